"""Tabs with a quarter of the style's padding beside their titles.

With Fusion's padding the window's tab titles need far more than the centre has: at the
default 1440 px it holds them only by squeezing both docks below what their panes show (the
layer list's columns, the saliency controls), and with the docks at a usable width the last
tabs went behind the tab bar's scroll arrows. Half the padding held eleven tabs (724 of 727
px); the twelfth (Doctor) needs a quarter, about 700 px, and the tab borders still set each
title apart.
"""

from PySide6.QtWidgets import QApplication, QProxyStyle, QStyle

_style: QProxyStyle | None = None


class CompactTabStyle(QProxyStyle):
    def pixelMetric(self, metric, option=None, widget=None) -> int:
        value = super().pixelMetric(metric, option, widget)
        return value // 4 if metric == QStyle.PixelMetric.PM_TabBarTabHSpace else value


def compact_tab_style() -> QProxyStyle:
    """One for the application: a widget does not own the style it is given, and a style
    deleted before its widgets would leave them drawing with a dangling one."""
    global _style
    if _style is None:
        app = QApplication.instance()
        # Over the application's own style (by name: a proxy owns the style it wraps).
        _style = CompactTabStyle(app.style().name())
        _style.setParent(app)
    return _style
