"""Training: EmbSum's loop, the hybrid recipe (ID tower and gate fit), the tiny test checkpoint."""
