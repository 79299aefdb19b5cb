"""The faust.App factory (and the broker security it needs); nothing else lives here."""

from __future__ import annotations

import logging

import faust

from streams.kafka.settings import KafkaSettings
from streams.worker.config import WorkerSettings
from streams.worker.transport import WorkerApp

logger = logging.getLogger(__name__)


def broker_credentials(k: KafkaSettings):
    """faust credentials for SASL and/or TLS (None: plaintext)."""
    ctx = k.ssl_context()
    if k.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(username=k.sasl_username, password=k.sasl_password,
                                     mechanism=k.sasl_mechanism or "PLAIN", ssl_context=ctx)
    return faust.SSLCredentials(ctx) if ctx is not None else None


def create_app(settings: WorkerSettings) -> faust.App:
    """A faust.App for this worker: rocksdb tables under data_dir, broker quirks applied, the
    decided replication for faust's own topics (BrokerError before ensure_topics decided it)."""
    k = settings.kafka
    servers = ";".join(f"kafka://{h.strip()}" for h in k.bootstrap.split(","))
    kw = dict(broker=servers, store="rocksdb://", datadir=str(settings.data_dir / "faust"),
              topic_partitions=k.partitions, topic_replication_factor=k.replication()[0],
              producer_acks=k.producer_acks,
              web_enabled=settings.web_port is not None,
              # outputs are bounded by the same limit (streams/worker/outbox.py)
              producer_max_request_size=settings.limits.message_bytes, **k.client.faust_kwargs())
    if settings.web_port is not None:
        kw.update(web_port=settings.web_port, web_bind=settings.web_host, web_host=settings.web_host)
    creds = broker_credentials(k)
    if creds is not None:
        kw["broker_credentials"] = creds
    return WorkerApp(settings.group_id, fetch_max_wait_ms=k.fetch_max_wait_ms, **kw)
