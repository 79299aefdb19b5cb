"""docker-compose.yml is valid and has the services the design names."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_compose_file_validates_and_reserves_gpu():
    subprocess.run(["docker-compose", "config", "-q"], cwd=ROOT, check=True)
    out = subprocess.run(["docker-compose", "config"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    for service in ("kafka:", "worker:", "trainer:", "replay:", "prepare:"):
        assert service in out
    assert "KAFKA_PROCESS_ROLES: broker,controller" in out  # KRaft, no ZooKeeper
    assert "capabilities:" in out and "gpu" in out and "driver: nvidia" in out
