"""Dense correspondence between pictures from a layer's features (the lecture's self-supervised
learning: descriptors learned from free labels, and any model's layers compared by what they match)."""
