"""deepvis: look inside PyTorch networks while they run.

The engine in this package never imports Qt; the views live in ``deepvis.widgets``.
"""

__version__ = "0.1.0"

from deepvis.errors import DeepvisError

__all__ = ["DeepvisError", "__version__"]
