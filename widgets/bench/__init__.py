"""Benchmarks that need a window: the live app, its minutes-long soak and the 3-D canvas."""
