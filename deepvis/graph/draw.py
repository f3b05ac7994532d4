"""A laid-out graph as SVG or as a picture: a box per node (its name, then its type, output
shape and parameters), coloured by what kind of layer it is, and the edges as polylines with
arrowheads. Groups (collapsed module blocks) are drawn doubled, as a stack."""

from __future__ import annotations

from xml.sax.saxutils import escape

import numpy as np

from deepvis.graph.layout import Layout, layout
from deepvis.graph.record import Graph, Node

CHAR_WIDTH = 6.6  # px per character of the 11 px labels (DejaVu Sans)
NODE_HEIGHT = 36.0
PADDING = 10.0
MARGIN = 20.0
BACKGROUND = "#1e1f22"
EDGE = "#8a8f98"
TEXT = "#f0f0f0"
DETAIL = "#c8c8cc"
MAX_PICTURE_SIDE = 16_000  # a PNG larger than this is drawn smaller


def family(node: Node) -> str:
    kind = node.type.lower()
    if node.op in ("input", "output"):
        return "io"
    if node.op == "group":
        return "group"
    if node.op == "function":
        return "function"
    for name, words in (("conv", ("conv",)), ("norm", ("norm",)), ("pool", ("pool",)),
                        ("linear", ("linear", "attention", "embed")),
                        ("activation", ("relu", "gelu", "silu", "swish", "sigmoid", "tanh", "softmax", "hardswish",
                                        "mish", "elu"))):
        if any(w in kind for w in words):
            return name
    return "module"


FILL = {"io": "#8a3a3a", "group": "#2f5878", "function": "#3c3d44", "conv": "#33628f", "norm": "#5a5a66",
        "pool": "#8a6329", "linear": "#6a458c", "activation": "#357a45", "module": "#4b5563"}


def _count(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else str(n)


def lines(node: Node) -> tuple[str, str]:
    """The two lines a node's box shows."""
    detail = [node.type if node.op != "group" else f"{node.type} (collapsed)"]
    if node.shape is not None:
        detail.append("x".join(map(str, node.shape)) or "scalar")
    if node.params:
        detail.append(f"{_count(node.params)} params")
    return node.name, " · ".join(detail)


def sizes(graph: Graph, char_width: float = CHAR_WIDTH, height: float = NODE_HEIGHT) -> dict:
    return {n.id: (max(len(a) for a in lines(n)) * char_width + 2 * PADDING, height) for n in graph.nodes}


def arrange(graph: Graph) -> Layout:
    return layout([n.id for n in graph.nodes], graph.edges, sizes(graph))


def arrow_head(x0: float, y0: float, x1: float, y1: float, length: float = 7.0) -> list[tuple[float, float]]:
    """The triangle at (x1, y1) of an edge coming from (x0, y0): its tip and two back corners."""
    dx, dy = x1 - x0, y1 - y0
    norm = float(np.hypot(dx, dy)) or 1.0
    dx, dy = dx / norm * length, dy / norm * length
    return [(x1, y1), (x1 - dx - dy / 2, y1 - dy + dx / 2), (x1 - dx + dy / 2, y1 - dy - dx / 2)]


def svg(graph: Graph, placed: Layout, title: str = "") -> str:
    width, height = placed.width + 2 * MARGIN, placed.height + 2 * MARGIN + (24 if title else 0)
    top = MARGIN + (24 if title else 0)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="DejaVu Sans, sans-serif">',
           f'<rect width="100%" height="100%" fill="{BACKGROUND}"/>',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           f'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="{EDGE}"/></marker></defs>']
    if title:
        out.append(f'<text x="{MARGIN}" y="{MARGIN + 6}" font-size="14" fill="{TEXT}">{escape(title)}</text>')
    for _s, _t, points in placed.edges:
        path = " ".join(f"{x + MARGIN:.1f},{y + top:.1f}" for x, y in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{EDGE}" stroke-width="1.2" '
                   f'marker-end="url(#arrow)"/>')
    for node in graph.nodes:
        p = placed.nodes[node.id]
        x, y = p.x - p.width / 2 + MARGIN, p.y + top
        fill = FILL[family(node)]
        name, detail = lines(node)
        if node.op == "group":
            out.append(f'<rect x="{x + 4:.1f}" y="{y - 4:.1f}" width="{p.width:.1f}" height="{p.height:.1f}" rx="4" '
                       f'fill="{fill}" stroke="#9ab" stroke-width="1"/>')
        out.append(f'<g><title>{escape(node.name)}: {escape(detail)}</title>'
                   f'<rect x="{x:.1f}" y="{y:.1f}" width="{p.width:.1f}" height="{p.height:.1f}" rx="4" fill="{fill}" '
                   f'stroke="#9ab" stroke-width="1"/>'
                   f'<text x="{p.x + MARGIN:.1f}" y="{y + 15:.1f}" font-size="11" fill="{TEXT}" '
                   f'text-anchor="middle">{escape(name)}</text>'
                   f'<text x="{p.x + MARGIN:.1f}" y="{y + 29:.1f}" font-size="10" fill="{DETAIL}" '
                   f'text-anchor="middle">{escape(detail)}</text></g>')
    out.append("</svg>")
    return "\n".join(out)


def picture(graph: Graph, placed: Layout, title: str = "") -> np.ndarray:
    """The same drawing as RGB uint8 (shrunk to at most MAX_PICTURE_SIDE on its longer side)."""
    from PIL import Image, ImageDraw

    from deepvis.render.figure import _font

    head = 24 if title else 0
    width, height = placed.width + 2 * MARGIN, placed.height + 2 * MARGIN + head
    scale = min(1.0, MAX_PICTURE_SIDE / max(width, height, 1))
    image = Image.new("RGB", (max(1, int(width * scale)), max(1, int(height * scale))), BACKGROUND)
    draw = ImageDraw.Draw(image)
    name_font, detail_font = _font(max(6, round(11 * scale))), _font(max(5, round(10 * scale)))

    def at(x, y):
        return (x + MARGIN) * scale, (y + MARGIN + head) * scale

    if title:
        draw.text((MARGIN * scale, MARGIN * scale - 6), title, fill=TEXT, font=_font(max(7, round(14 * scale))))
    for _s, _t, points in placed.edges:
        xy = [at(x, y) for x, y in points]
        draw.line(xy, fill=EDGE, width=1)
        (x0, y0), (x1, y1) = xy[-2], xy[-1]
        draw.polygon(arrow_head(x0, y0, x1, y1, 7 * scale), fill=EDGE)
    for node in graph.nodes:
        p = placed.nodes[node.id]
        x0, y0 = at(p.x - p.width / 2, p.y)
        x1, y1 = at(p.x + p.width / 2, p.y + p.height)
        fill = FILL[family(node)]
        if node.op == "group":
            draw.rounded_rectangle([x0 + 4 * scale, y0 - 4 * scale, x1 + 4 * scale, y1 - 4 * scale], 4 * scale,
                                   fill=fill, outline="#99aabb")
        draw.rounded_rectangle([x0, y0, x1, y1], 4 * scale, fill=fill, outline="#99aabb")
        name, detail = lines(node)
        cx = (x0 + x1) / 2
        draw.text((cx, y0 + 11 * scale), name, fill=TEXT, font=name_font, anchor="mm")
        draw.text((cx, y0 + 26 * scale), detail, fill=DETAIL, font=detail_font, anchor="mm")
    return np.asarray(image)
