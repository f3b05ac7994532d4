"""Saliency: attribution methods on real models and their maps drawn over the input."""
