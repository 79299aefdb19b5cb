"""Kafka plumbing: settings and broker quirks, contracts, replay, replicas, re-reads."""
