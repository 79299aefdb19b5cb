"""Partitions, replication and acks for a real cluster: read from env or flags in one place,
decided from the broker count when unset, and carried by every topic the project creates,
faust's table changelogs included."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from streams.cli.flags import kafka_from_args
from streams.cli.main import build_parser
from streams.errors import BrokerError
from streams.kafka.replay import TOPIC_NAMES, ensure_topic_set, new_topics
from streams.kafka.settings import KafkaSettings
from streams.worker.app import create_app
from streams.worker.config import WorkerSettings
from streams.worker.topics import declare_tables

ENV = {"THREADREC_PARTITIONS": "12", "THREADREC_REPLICATION_FACTOR": "3",
       "THREADREC_MIN_INSYNC_REPLICAS": "2", "THREADREC_ACKS": "1"}


def test_env_sets_partitions_replication_and_acks(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    k = KafkaSettings()
    assert (k.partitions, k.replication_factor, k.min_insync_replicas, k.acks) == (12, 3, 2, "1")
    assert k.producer_acks == 1 and k.aiokafka_producer_kwargs()["acks"] == 1


def test_flags_override_the_env(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    for command in (["worker"], ["replay", "somewhere"], ["trainer"]):
        args = build_parser().parse_args(command + ["--partitions", "32", "--replication-factor", "2",
                                                    "--min-insync-replicas", "1", "--acks", "all"])
        k = kafka_from_args(args)
        assert (k.partitions, k.replication_factor, k.min_insync_replicas) == (32, 2, 1), command
        assert k.acks == "all" and k.producer_acks == -1


@pytest.mark.parametrize("bad", [{"THREADREC_ACKS": "2"}, {"THREADREC_REPLICATION_FACTOR": "0"},
                                 {"THREADREC_PARTITIONS": "0"}, {"THREADREC_MIN_INSYNC_REPLICAS": "0"}])
def test_bad_values_are_refused(monkeypatch, bad):
    for name, value in bad.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError):
        KafkaSettings()


def test_defaults_scale_to_16_workers_and_wait_for_every_replica(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    k = KafkaSettings()
    assert k.partitions == 16 and k.acks == "all" and k.producer_acks == -1
    assert k.replication_factor is None  # decided from the cluster


@pytest.mark.parametrize("brokers, factor, insync", [(1, 1, 1), (2, 2, 1), (3, 3, 2), (7, 3, 2)])
def test_unset_replication_is_min_of_3_and_the_broker_count(brokers, factor, insync):
    assert KafkaSettings().decided(brokers).replication() == (factor, insync)


def test_configured_replication_wins_over_the_broker_count():
    assert KafkaSettings(replication_factor=2).decided(5).replication() == (2, 1)
    assert KafkaSettings(replication_factor=4, min_insync_replicas=3).decided(1).replication() == (4, 3)
    with pytest.raises(BrokerError, match="exceeds replication factor 1"):
        KafkaSettings(min_insync_replicas=2).decided(1)


def test_nothing_is_created_or_declared_before_replication_is_decided(tmp_path, monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(BrokerError, match="not decided"):
        new_topics(KafkaSettings(), ["x"])
    with pytest.raises(BrokerError, match="not decided"):
        create_app(WorkerSettings(data_dir=tmp_path))


def test_topic_specs_carry_partitions_replication_and_cleanup_policy():
    k = KafkaSettings(topic_prefix="t-", partitions=5).decided(3)
    specs = {t.name: t for t in new_topics(k, [k.topic(n) for n in TOPIC_NAMES]
                                           + ["t-threadrec-user-state-changelog"])}
    assert {(t.num_partitions, t.replication_factor) for t in specs.values()} == {(5, 3)}
    compacted = {n for n, t in specs.items() if t.topic_configs.get("cleanup.policy") == "compact"}
    assert compacted == {"t-items", "t-item-vectors", "t-parameters", "t-threadrec-user-state-changelog"}
    assert {t.topic_configs["min.insync.replicas"] for t in specs.values()} == {"2"}


def test_the_faust_app_and_its_changelogs_get_the_decided_settings(tmp_path):
    k = KafkaSettings(partitions=9, replication_factor=3, acks="1").decided(brokers=1)
    app = create_app(WorkerSettings(data_dir=tmp_path, kafka=k))
    assert app.conf.topic_replication_factor == 3 and app.conf.topic_partitions == 9
    assert app.conf.producer_acks == 1
    tables = declare_tables(app, k)
    for table in (tables.states, tables.offsets):
        changelog = table.changelog_topic
        assert changelog.partitions == 9  # co-partitioned with engagements
        assert changelog.config["min.insync.replicas"] == "2"


def _describe(bootstrap: str, names: list[str]) -> dict[str, tuple[int, dict[str, str]]]:
    """topic -> (partitions, its configs) as the broker reports them."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    async def ask() -> dict[str, tuple[int, dict[str, str]]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            parts = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(names)}
            resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in names]
            out = {}
            for response in await admin.describe_configs(resources):
                for _, _, _, name, entries in response.resources:
                    out[name] = (parts[name], {e[0]: e[1] for e in entries})
            return out
        finally:
            await admin.close()

    return asyncio.run(ask())


@pytest.mark.broker
def test_ensure_topic_set_creates_what_the_settings_say(kafka_broker):
    prefix = f"cd-{uuid.uuid4().hex[:8]}-"
    k = KafkaSettings(bootstrap=kafka_broker.bootstrap, broker_kind=kafka_broker.kind,
                      topic_prefix=prefix, partitions=6)
    decided = ensure_topic_set(k)
    assert decided.replication() == (1, 1)  # the test broker is a single broker
    described = _describe(kafka_broker.bootstrap, [k.topic(n) for n in TOPIC_NAMES])
    assert {n: p for n, (p, _) in described.items()} == {k.topic(n): 6 for n in TOPIC_NAMES}
    for name in TOPIC_NAMES:
        configs = described[k.topic(name)][1]
        assert configs["min.insync.replicas"] == "1"
        policy = "compact" if name in ("items", "item-vectors", "parameters") else "delete"
        assert configs.get("cleanup.policy", "delete") == policy, name


@pytest.mark.broker
def test_faust_creates_the_changelogs_like_the_engagements_topic(kafka_broker, tmp_path):
    prefix = f"cf-{uuid.uuid4().hex[:8]}-"
    k = ensure_topic_set(KafkaSettings(bootstrap=kafka_broker.bootstrap,
                                       broker_kind=kafka_broker.kind, topic_prefix=prefix,
                                       partitions=5))
    app = create_app(WorkerSettings(data_dir=tmp_path, kafka=k, app_id="cf"))
    tables = declare_tables(app, k)

    async def declare() -> None:
        try:
            await tables.states.changelog_topic.declare()
        finally:
            await app.producer.stop()

    asyncio.run(declare())
    name = tables.states.changelog_topic.get_topic_name()
    assert name == f"{prefix}cf-user-state-changelog"
    partitions, configs = _describe(kafka_broker.bootstrap, [name])[name]
    assert partitions == 5
    assert configs["cleanup.policy"] == "compact" and configs["min.insync.replicas"] == "1"


@pytest.mark.broker
def test_an_existing_deployment_keeps_its_partition_count(kafka_broker, caplog):
    """Topics made under the old default (4) stay usable: the count of `engagements` wins, so
    the tables stay co-partitioned with it and the missing topics match it."""
    from streams.kafka.replay import ensure_topics

    prefix = f"ca-{uuid.uuid4().hex[:8]}-"
    old = KafkaSettings(bootstrap=kafka_broker.bootstrap, broker_kind=kafka_broker.kind,
                        topic_prefix=prefix, partitions=4)
    ensure_topics(old, [old.topic("engagements")])
    with caplog.at_level("WARNING", logger="streams.kafka.replay"):
        k = ensure_topic_set(old.model_copy(update={"partitions": 16}))
    assert k.partitions == 4 and "not the configured 16" in caplog.text
    described = _describe(kafka_broker.bootstrap, [k.topic(n) for n in TOPIC_NAMES])
    assert {p for p, _ in described.values()} == {4}
