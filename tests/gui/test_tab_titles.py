"""The tab titles the command line knows without Qt (`deepvis gui --help`, `--tab`) are the
registered views' titles, in the window's order."""

import pytest

pytest.importorskip("PySide6")


def test_tab_titles_are_the_registered_views_in_window_order():
    # The main window's module imports the tab modules that register the built-in views; importing
    # it needs no QApplication.
    import deepvis.widgets.window.mainwindow  # noqa: F401
    from deepvis.widgets.window.views import registered_views

    from deepvis.core.defaults import TAB_TITLES

    assert tuple(cls.title for cls in registered_views()) == TAB_TITLES
