"""The chaos driver: real workers (and a trainer) killed -9, joined and left while engagements
are replayed, then the invariants checked (driver.py). Above every other streams layer; only
tests/ and bench/ import it."""

from streams.chaos.driver import ChaosPlan, ChaosReport, run_chaos

__all__ = ["ChaosPlan", "ChaosReport", "run_chaos"]
