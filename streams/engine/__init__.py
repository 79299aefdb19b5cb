"""The per-event engine: sessionize, encode, refresh, retrieve, rerank. No Kafka."""
