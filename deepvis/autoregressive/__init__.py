"""Autoregressive and 1-D models: receptive fields, causality, sampling."""
