"""The faust.App factory (and the broker security it needs); nothing else lives here."""

from __future__ import annotations

import logging
import ssl

import faust

from streams.kafka.settings import KafkaSettings
from streams.worker.config import WorkerSettings

logger = logging.getLogger(__name__)


def ssl_context(k: KafkaSettings) -> ssl.SSLContext | None:
    """A client TLS context from the CA/cert/key files, or None for plaintext protocols."""
    if not k.security_protocol.endswith("SSL"):
        return None
    ctx = ssl.create_default_context(cafile=k.ssl_cafile)
    if k.ssl_certfile:
        ctx.load_cert_chain(k.ssl_certfile, k.ssl_keyfile)
    return ctx


def broker_credentials(k: KafkaSettings):
    """faust credentials for SASL and/or TLS (None: plaintext)."""
    ctx = ssl_context(k)
    if k.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(username=k.sasl_username, password=k.sasl_password,
                                     mechanism=k.sasl_mechanism or "PLAIN", ssl_context=ctx)
    return faust.SSLCredentials(ctx) if ctx is not None else None


def aiokafka_security_kwargs(k: KafkaSettings) -> dict:
    """The same security for plain aiokafka clients (the item replica consumer)."""
    kw: dict = {"security_protocol": k.security_protocol, "ssl_context": ssl_context(k)}
    if k.sasl_mechanism:
        kw.update(sasl_mechanism=k.sasl_mechanism, sasl_plain_username=k.sasl_username,
                  sasl_plain_password=k.sasl_password)
    return kw


def create_app(settings: WorkerSettings) -> faust.App:
    """A faust.App for this worker: rocksdb tables under data_dir, broker quirks applied."""
    k = settings.kafka
    servers = ";".join(f"kafka://{h.strip()}" for h in k.bootstrap.split(","))
    kw = dict(broker=servers, store="rocksdb://", datadir=str(settings.data_dir / "faust"),
              topic_partitions=k.partitions, topic_replication_factor=1,
              web_enabled=settings.web_port is not None,
              # outputs are bounded by the same limit (streams/worker/outbox.py)
              producer_max_request_size=settings.limits.message_bytes, **k.client.faust_kwargs())
    if settings.web_port is not None:
        kw["web_port"] = settings.web_port
    creds = broker_credentials(k)
    if creds is not None:
        kw["broker_credentials"] = creds
    return faust.App(settings.group_id, **kw)
