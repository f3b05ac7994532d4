"""Headless benchmarks of the engine (those that need a window are in deepvis.widgets.bench)."""
