"""Tabs with a sixth of the style's padding beside their titles, in a font a tenth smaller.

With Fusion's padding the window's tab titles need far more than the centre has: at the
default 1440 px it holds them only by squeezing both docks below what their panes show (the
layer list's columns, the saliency controls), and with the docks at a usable width the last
tabs went behind the tab bar's scroll arrows. Half the padding held eleven tabs (724 of 727
px); the twelfth (Doctor) needs a quarter, about 700 px, and the tab borders still set each
title apart. The thirteenth (Correspondence) brought them to 809 px of 728: a sixth of the
padding and 90 % of the window's font size hold them again (Qt's elision, the alternative,
cut every title to a stub: "Do...", "Sa...").
"""

from PySide6.QtWidgets import QApplication, QProxyStyle, QStyle, QTabBar

PADDING_DIVISOR = 6
FONT_SCALE = 0.9

_style: QProxyStyle | None = None


class CompactTabStyle(QProxyStyle):
    def pixelMetric(self, metric, option=None, widget=None) -> int:
        value = super().pixelMetric(metric, option, widget)
        return value // PADDING_DIVISOR if metric == QStyle.PixelMetric.PM_TabBarTabHSpace else value


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


def compact_tab_bar(bar: QTabBar) -> None:
    bar.setStyle(compact_tab_style())
    font = bar.font()
    font.setPointSizeF(font.pointSizeF() * FONT_SCALE)
    bar.setFont(font)
