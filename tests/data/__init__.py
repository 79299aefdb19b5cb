"""Tests of data loaders, splits and replay (they write their own small files)."""
