"""Kafka connection and topic settings, read from env (THREADREC_*) or CLI in one place."""

from __future__ import annotations

import argparse
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.kafka.broker import ClientSettings, settings_for


class KafkaSettings(BaseSettings):
    """Where the broker is, how to authenticate, and what the topics are called."""

    model_config = SettingsConfigDict(env_prefix="THREADREC_", extra="ignore")

    bootstrap: str = "127.0.0.1:9092"
    broker_kind: Literal["kafka", "tansu"] = "kafka"
    topic_prefix: str = ""
    partitions: int = Field(4, ge=1)
    # TLS / SASL pass through to every client (kafka-python, aiokafka/faust).
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None  # PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    def topic(self, name: str) -> str:
        """Full topic name: prefix + one of items, engagements, recommendations, deadletter."""
        return f"{self.topic_prefix}{name}"

    @property
    def client(self) -> ClientSettings:
        return settings_for(self.broker_kind)

    def kafka_python_kwargs(self) -> dict:
        """Connection + security kwargs for kafka-python clients."""
        kw: dict = {"bootstrap_servers": self.bootstrap, "security_protocol": self.security_protocol}
        if self.sasl_mechanism:
            kw.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.sasl_username,
                      sasl_plain_password=self.sasl_password)
        for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if getattr(self, key):
                kw[key] = getattr(self, key)
        return kw

    def producer_kwargs(self) -> dict:
        """kafka-python KafkaProducer kwargs, broker quirks included."""
        return {**self.kafka_python_kwargs(), **self.client.kafka_python_producer_kwargs()}


def add_kafka_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI flags that override the THREADREC_* environment."""
    g = parser.add_argument_group("kafka")
    g.add_argument("--bootstrap", help="broker address HOST:PORT (env THREADREC_BOOTSTRAP)")
    g.add_argument("--broker-kind", choices=["kafka", "tansu"], help="client quirks to apply")
    g.add_argument("--topic-prefix", help="prefix for all topic names")
    g.add_argument("--security-protocol", choices=["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
    g.add_argument("--sasl-mechanism")
    g.add_argument("--sasl-username")
    g.add_argument("--sasl-password")
    g.add_argument("--ssl-cafile")
    g.add_argument("--ssl-certfile")
    g.add_argument("--ssl-keyfile")


def kafka_settings_from_args(args: argparse.Namespace) -> KafkaSettings:
    """KafkaSettings from env, with CLI flags that were given taking precedence."""
    fields = KafkaSettings.model_fields
    given = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    return KafkaSettings(**given)
