"""The main window's side panes (input, layers, unit and its pictures, saliency, predictions), image panel,
and the tabs' save dialog and writes (export)."""
