"""The engine is plain Python: importing it must not load faust or any Kafka client."""

from __future__ import annotations

import subprocess
import sys


def test_engine_imports_no_kafka_or_faust():
    code = ("import sys, streams.engine.engine, streams.kafka.messages, streams.engine.sessionizer; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'faust', 'kafka', 'aiokafka', 'mode'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
