"""Shared fixtures: factories are defined in tests/fixtures/ and registered here."""

pytest_plugins = ["tests.fixtures.kafka"]
