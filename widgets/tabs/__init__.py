"""The main window's tabs; each registers with the view registry (window.views) when imported."""
