"""Shared fixtures: factories are defined in tests/fixtures/ and registered here."""

import os

# One OpenMP/BLAS thread for the whole run, subprocesses included: the tests' models are tiny,
# many small calls, which threads spinning against other processes on 2 shared cores made ~17x
# slower (an engine parity test: 37.9 s on 2 threads, 2.2 s on 1). Set before torch, faiss or
# numpy load their pools; a caller's own OMP_NUM_THREADS wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

pytest_plugins = ["tests.fixtures.kafka", "tests.fixtures.examples", "tests.fixtures.imports"]
