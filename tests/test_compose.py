"""docker-compose.yml is valid, has the services the design names and runs on CPU; the
docker-compose.gpu.yml override adds the worker's GPU reservation."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GPU = ["-f", "docker-compose.yml", "-f", "docker-compose.gpu.yml"]

pytestmark = pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")


def _config(*files: str) -> str:
    """The merged config of files (checked with -q first: invalid files fail here)."""
    subprocess.run(["docker-compose", *files, "config", "-q"], cwd=ROOT, check=True)
    return subprocess.run(["docker-compose", *files, "config"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


def _worker(config: str) -> str:
    """The worker service's block of a merged config."""
    block = config.split("\n  worker:\n", 1)[1]
    return block.split("\n  trainer:\n", 1)[0].split("\nvolumes:", 1)[0]


def test_compose_file_validates_and_runs_on_cpu():
    out = _config("-f", "docker-compose.yml")
    for service in ("kafka:", "worker:", "trainer:", "replay:", "prepare:"):
        assert service in out
    assert "KAFKA_PROCESS_ROLES: broker,controller" in out  # KRaft, no ZooKeeper
    # a GPU reservation makes `up` fail without the NVIDIA runtime: none by default
    assert "nvidia" not in out and "capabilities:" not in out and "devices:" not in out


def test_gpu_override_reserves_a_gpu_for_the_worker():
    worker = _worker(_config(*GPU))
    assert "driver: nvidia" in worker and "capabilities:" in worker and "- gpu" in worker
    assert "command:" in worker and "/data/checkpoint" in worker  # merged onto the base worker
