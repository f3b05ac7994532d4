"""Network definitions, training recipes and small trained weights of deepvis.

Imported as ``deepvis.models``. Weight files live in ``weights/`` beside this file.
"""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
