"""`threadrec broker`: SIGTERM stops its broker process; a taken port fails with one line."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.kafka.broker import free_port

pytestmark = pytest.mark.broker  # starts the bundled broker, twice

ROOT = Path(__file__).resolve().parents[3]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _broker(port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "streams.cli", "broker", "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigterm_stops_the_broker_and_a_taken_port_is_refused():
    port = free_port()
    first = _broker(port)
    try:
        assert "listening" in first.stdout.readline()
        second = _broker(port)
        out, err = second.communicate(timeout=60)
        assert second.returncode == 1 and "listening" not in out
        assert err.strip().splitlines() == [err.strip()] and f"port {port}" in err and "taken" in err
        assert _listening(port)
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
    deadline = time.monotonic() + 10
    while _listening(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _listening(port), "the broker process outlived `threadrec broker`"
