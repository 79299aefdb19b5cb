"""Kafka connection and topic settings, read from env (THREADREC_*) or CLI in one place."""

from __future__ import annotations

import ssl
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.errors import BrokerError
from streams.kafka.broker import ClientSettings, settings_for

#: Replication chosen when none is configured and the cluster has this many brokers or more.
AUTO_REPLICATION = 3


class KafkaSettings(BaseSettings):
    """Where the broker is, how to authenticate, what the topics are called and how durable.

    Replication left unset is decided from the cluster (`decided`): min(3, brokers its metadata
    reports), so the bundled single broker gets 1 and a cluster of three or more gets 3 with
    min.insync.replicas 2; with acks=all a write then survives the loss of one broker.
    """

    model_config = SettingsConfigDict(env_prefix="THREADREC_", extra="ignore")

    bootstrap: str = "127.0.0.1:9092"  # broker address HOST:PORT[,HOST:PORT]
    broker_kind: Literal["kafka", "tansu"] = "kafka"  # client quirks to apply (tansu: bundled)
    topic_prefix: str = ""  # prefix of every topic name
    # partitions of the topics this process creates: the most workers that can consume
    # engagements (size it for the largest deployment; a topic's count never shrinks)
    partitions: int = Field(16, ge=1)
    # copies of every partition of the topics this process creates and of the worker's table
    # changelogs (none: min(3, brokers the cluster reports))
    replication_factor: int | None = Field(None, ge=1)
    # replicas that must hold a write before acks=all succeeds (none: 2 when replicated 3 or
    # more times, else 1)
    min_insync_replicas: int | None = Field(None, ge=1)
    # producer acknowledgement: all (every in-sync replica), 1 (the leader only), 0 (none)
    acks: Literal["all", "1", "0"] = "all"
    # longest a consumer's fetch waits at the broker for records (faust's own: 1500 ms)
    fetch_max_wait_ms: int = Field(50, ge=1, le=60_000)
    # TLS / SASL pass through to every client (aiokafka, faust)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None  # PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
    sasl_username: str | None = None  # SASL user
    sasl_password: str | None = None  # SASL password (prefer THREADREC_SASL_PASSWORD)
    ssl_cafile: str | None = None  # CA bundle (PEM) that signs the broker's certificate
    ssl_certfile: str | None = None  # client certificate (PEM) for mutual TLS
    ssl_keyfile: str | None = None  # client key (PEM) for mutual TLS

    def decided(self, brokers: int) -> KafkaSettings:
        """These settings with replication fixed for a cluster of `brokers`: the configured
        factor, else min(3, brokers); BrokerError if min.insync.replicas exceeds it."""
        factor = self.replication_factor or max(1, min(AUTO_REPLICATION, brokers))
        insync = self.min_insync_replicas or (2 if factor >= AUTO_REPLICATION else 1)
        if insync > factor:
            raise BrokerError(f"min.insync.replicas {insync} exceeds replication factor {factor}: "
                              "no write with acks=all could succeed")
        return self.model_copy(update={"replication_factor": factor, "min_insync_replicas": insync})

    def replication(self) -> tuple[int, int]:
        """(replication factor, min.insync.replicas); BrokerError before `decided`."""
        if self.replication_factor is None or self.min_insync_replicas is None:
            raise BrokerError("replication not decided: ensure_topics decides it from the "
                              "cluster's broker count (KafkaSettings.decided)")
        return self.replication_factor, self.min_insync_replicas

    def topic_configs(self) -> dict[str, str]:
        """Kafka topic configs every topic this project creates carries (faust's changelogs too)."""
        return {"min.insync.replicas": str(self.replication()[1])}

    @property
    def producer_acks(self) -> int:
        """acks as the Kafka protocol counts it (-1 = all), the form faust and aiokafka take."""
        return -1 if self.acks == "all" else int(self.acks)

    def topic(self, name: str) -> str:
        """Full topic name: prefix + one of items, engagements, recommendations, deadletter."""
        return f"{self.topic_prefix}{name}"

    def changelog(self, table: str, app_id: str = "threadrec") -> str:
        """faust's changelog topic of a worker table: '{prefix}{app id}-{table}-changelog'."""
        return f"{self.topic_prefix}{app_id}-{table}-changelog"

    @property
    def client(self) -> ClientSettings:
        return settings_for(self.broker_kind)

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client TLS context from the CA/cert/key files, or None for plaintext protocols."""
        if not self.security_protocol.endswith("SSL"):
            return None
        ctx = ssl.create_default_context(cafile=self.ssl_cafile)
        if self.ssl_certfile:
            ctx.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return ctx

    def aiokafka_security_kwargs(self) -> dict:
        """Security kwargs for plain aiokafka clients (item replica, gap fetcher)."""
        kw: dict = {"security_protocol": self.security_protocol, "ssl_context": self.ssl_context()}
        if self.sasl_mechanism:
            kw.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.sasl_username,
                      sasl_plain_password=self.sasl_password)
        return kw

    def aiokafka_kwargs(self) -> dict:
        """Connection + security kwargs for plain aiokafka clients (admin, consumer)."""
        return {"bootstrap_servers": self.bootstrap, **self.aiokafka_security_kwargs()}

    def aiokafka_producer_kwargs(self) -> dict:
        """AIOKafkaProducer kwargs, broker quirks included."""
        # idempotence stays off (it fails on tansu), and aiokafka keeps one batch in flight per
        # partition, so retries cannot reorder records
        return {**self.aiokafka_kwargs(), "acks": self.producer_acks,
                **self.client.aiokafka_producer_kwargs()}
