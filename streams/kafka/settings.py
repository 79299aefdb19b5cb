"""Kafka connection and topic settings, read from env (THREADREC_*) or CLI in one place."""

from __future__ import annotations

import ssl
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.kafka.broker import ClientSettings, settings_for


class KafkaSettings(BaseSettings):
    """Where the broker is, how to authenticate, and what the topics are called."""

    model_config = SettingsConfigDict(env_prefix="THREADREC_", extra="ignore")

    bootstrap: str = "127.0.0.1:9092"  # broker address HOST:PORT[,HOST:PORT]
    broker_kind: Literal["kafka", "tansu"] = "kafka"  # client quirks to apply (tansu: bundled)
    topic_prefix: str = ""  # prefix of every topic name
    partitions: int = Field(4, ge=1)  # partitions of topics this process creates
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

    def topic(self, name: str) -> str:
        """Full topic name: prefix + one of items, engagements, recommendations, deadletter."""
        return f"{self.topic_prefix}{name}"

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
        # acks=all as kafka-python's default was; idempotence stays off (it fails on tansu), and
        # aiokafka keeps one batch in flight per partition, so retries cannot reorder records
        return {**self.aiokafka_kwargs(), "acks": "all", **self.client.aiokafka_producer_kwargs()}
