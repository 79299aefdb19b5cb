"""`threadrec broker`: run the bundled Kafka-compatible broker in the foreground."""

from __future__ import annotations

import argparse
import signal
import sys
import time

from streams.kafka.broker import EmbeddedBroker


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("broker", help="run the bundled Kafka-compatible broker (tansu)")
    p.add_argument("--port", type=int, default=9092, help="loopback port (default 9092)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # SIGTERM must unwind the `with` so the broker process (its own session) stops too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with EmbeddedBroker(port=args.port) as broker:
        print(f"broker listening on {broker.bootstrap} (memory storage); Ctrl-C stops it", flush=True)
        while True:
            time.sleep(3600)
