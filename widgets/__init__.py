"""Qt views of deepvis (PySide6, pyqtgraph, vispy). Imported as ``deepvis.widgets``."""
