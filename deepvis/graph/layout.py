"""A layered (Sugiyama) layout of a graph, top to bottom, in plain Python.

Graphviz's ``dot`` is not installed where deepvis runs (its Python package is a wrapper of the
binary), and grandalf 0.8's Sugiyama layout, also plain Python, took 1.96 s where this one
takes 0.15 s on a 2,019-node graph (a 77-block ViT; 0.07 against 0.02 s on a ViT-Base's
329), with one dependency less. The steps are the classic ones:

1. Layers: each node one row below the lowest of its inputs (longest path from the sources),
   in an order that respects every edge (execution order is one; a cycle left by folding
   groups is broken at its back edge).
2. Edges spanning several rows pass through a dummy point in each row between.
3. Order within rows: barycentre sweeps down and up (each node at the mean position of its
   neighbours in the row before), four rounds, starting from execution order.
4. x: each node placed at the mean x of its neighbours in the row before (then after), and
   the row pushed apart to the node widths and a gap, keeping the order, centred on its
   wishes (a left-to-right and a right-to-left pass, averaged).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

GAP_X = 16.0
GAP_Y = 28.0
SWEEPS = 4


@dataclass(frozen=True)
class Placed:
    x: float  # centre
    y: float  # top
    width: float
    height: float


@dataclass(frozen=True)
class Layout:
    nodes: dict  # node id -> Placed
    edges: list  # (source, target, [(x, y), ...] from the source's bottom to the target's top)
    width: float
    height: float
    rows: int


def _layers(ids: list, edges: list) -> dict:
    """Row of each node: one below the lowest of its inputs, in an order of ``ids`` that puts
    every edge's source first where it can (Kahn's algorithm; a cycle is broken by taking the
    earliest waiting node)."""
    position = {n: k for k, n in enumerate(ids)}
    preds, succs = defaultdict(list), defaultdict(list)
    waiting = {n: 0 for n in ids}
    for s, t in edges:
        preds[t].append(s)
        succs[s].append(t)
        waiting[t] += 1
    import heapq

    ready = [(position[n], n) for n in ids if waiting[n] == 0]
    heapq.heapify(ready)
    done, order = set(), []
    while len(order) < len(ids):
        if not ready:  # a cycle: the earliest node not yet laid out goes next
            rest = min((position[n], n) for n in ids if n not in done)
            ready.append(rest)
        _, n = heapq.heappop(ready)
        if n in done:
            continue
        done.add(n)
        order.append(n)
        for t in succs[n]:
            waiting[t] -= 1
            if waiting[t] == 0:
                heapq.heappush(ready, (position[t], t))
    row = {}
    for n in order:
        row[n] = max((row[p] + 1 for p in preds[n] if p in row), default=0)
    return row


def layout(ids: list, edges: list, sizes: dict, gap_x: float = GAP_X, gap_y: float = GAP_Y) -> Layout:
    """``ids`` in execution order, ``edges`` (source, target), ``sizes`` id -> (width, height)."""
    row = _layers(ids, edges)
    edges = [(s, t) for s, t in edges if row[t] > row[s]]  # a broken cycle's back edge is not drawn
    # Dummy points: ("d", edge index, row) for each row an edge passes.
    chains = []
    links = []  # (upper, lower) between consecutive rows
    for k, (s, t) in enumerate(edges):
        chain = [s] + [("d", k, r) for r in range(row[s] + 1, row[t])] + [t]
        for r, d in enumerate(chain[1:-1], start=row[s] + 1):
            row[d] = r
        chains.append(chain)
        links.extend(zip(chain, chain[1:]))
    rows = defaultdict(list)
    for n in ids:
        rows[row[n]].append(n)
    for chain in chains:  # dummies after the row's nodes, in edge order
        for d in chain[1:-1]:
            rows[row[d]].append(d)
    count = max(rows) + 1 if rows else 0
    up, down = defaultdict(list), defaultdict(list)
    for a, b in links:
        down[a].append(b)
        up[b].append(a)

    order = {n: k for r in rows for k, n in enumerate(rows[r])}
    for _ in range(SWEEPS):
        for r in range(1, count):
            _sort_by_barycentre(rows[r], up, order)
        for r in range(count - 2, -1, -1):
            _sort_by_barycentre(rows[r], down, order)

    def size(n):
        return sizes[n] if not isinstance(n, tuple) else (0.0, 0.0)

    x = {}
    for r in range(count):  # a first placement, packed from the left
        at = 0.0
        for n in rows[r]:
            w = size(n)[0]
            x[n] = at + w / 2
            at += w + gap_x
    for _ in range(SWEEPS):
        for r in range(1, count):
            _place(rows[r], up, x, size, gap_x)
        for r in range(count - 2, -1, -1):
            _place(rows[r], down, x, size, gap_x)
        for r in range(1, count):
            _place(rows[r], up, x, size, gap_x)
    left = min((x[n] - size(n)[0] / 2 for r in rows for n in rows[r]), default=0.0)
    placed, y = {}, 0.0
    tops = {}
    for r in range(count):
        height = max((size(n)[1] for n in rows[r]), default=0.0)
        tops[r] = (y, height)
        for n in rows[r]:
            w, h = size(n)
            placed[n] = Placed(x[n] - left, y + (height - h) / 2, w, h)
        y += height + gap_y
    nodes = {n: p for n, p in placed.items() if not isinstance(n, tuple)}
    routed = []
    for (s, t), chain in zip(edges, chains):
        a, b = placed[s], placed[t]
        points = [(a.x, a.y + a.height)]
        for d in chain[1:-1]:
            top, height = tops[row[d]]
            points.append((placed[d].x, top))
            points.append((placed[d].x, top + height))
        points.append((b.x, b.y))
        routed.append((s, t, points))
    width = max((p.x + p.width / 2 for p in placed.values()), default=0.0)
    return Layout(nodes, routed, width, max(y - gap_y, 0.0), count)


def _sort_by_barycentre(members: list, neighbours: dict, order: dict) -> None:
    def key(n):
        near = neighbours.get(n)
        return (sum(order[m] for m in near) / len(near)) if near else order[n]
    members.sort(key=lambda n: (key(n), order[n]))
    for k, n in enumerate(members):
        order[n] = k


def _place(members: list, neighbours: dict, x: dict, size, gap: float) -> None:
    """Each member at the mean x of its neighbours (where it has any), then pushed apart in
    order: the mean of a left-to-right and a right-to-left packing around those wishes."""
    if not members:
        return
    wish = []
    for n in members:
        near = neighbours.get(n)
        wish.append(sum(x[m] for m in near) / len(near) if near else x[n])
    widths = [size(n)[0] for n in members]
    forward = []
    for k, w in enumerate(widths):
        lowest = forward[-1] + (widths[k - 1] + w) / 2 + gap if k else float("-inf")
        forward.append(max(wish[k], lowest))
    backward = [0.0] * len(members)
    for k in range(len(members) - 1, -1, -1):
        highest = backward[k + 1] - (widths[k + 1] + widths[k]) / 2 - gap if k + 1 < len(members) else float("inf")
        backward[k] = min(wish[k], highest)
    mean = [(f + b) / 2 for f, b in zip(forward, backward)]
    # The mean keeps the order but may overlap; one more left-to-right pass settles it.
    for k, n in enumerate(members):
        if k:
            mean[k] = max(mean[k], mean[k - 1] + (widths[k - 1] + widths[k]) / 2 + gap)
        x[n] = mean[k]
