"""The Faust worker: app, topics, tables, thin agents, the batch path, runtime, stats."""
