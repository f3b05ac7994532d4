"""What of a recorded graph is drawn: module groups collapsed into one node each, and
pass-through nodes (Identity, Dropout, ...) contracted away unless asked for.

A collapsed group is one node standing for every node that ran inside that module (and its
submodules): edges into and out of the group attach to it, edges inside it disappear. By
default the repeated blocks are collapsed (the children of one container that share a class:
a ResNet stage's BasicBlocks, a ViT's twelve Blocks), which is how their papers draw them;
any group can be expanded again, or collapsed one level up (a whole ResNet stage, all the
ViT's blocks).
"""

from __future__ import annotations

from collections import defaultdict

from deepvis.core.probe import PLUMBING
from deepvis.graph.record import Graph, Node


def parent(path: str) -> str:
    return path.rsplit(".", 1)[0] if "." in path else ""


def inside(group: str, path: str) -> bool:
    """Whether ``path`` is module ``group`` or one of its submodules."""
    return path == group or path.startswith(group + ".") or group == ""


CONTAINERS = frozenset({"Sequential", "ModuleList", "ModuleDict"})  # hold blocks, are not blocks


def repeated_blocks(graph: Graph) -> set[str]:
    """The groups that are repeated blocks: the children of one container, two or more of
    which share a class (a ResNet stage's BasicBlocks, a ViT's Blocks; not the stages
    themselves, plain Sequentials), and that themselves ran nodes."""
    used = {n.group for n in graph.nodes}
    ran = {g for g in graph.groups if graph.groups[g] not in CONTAINERS and any(inside(g, u) for u in used)} - {""}
    siblings: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in ran:
        siblings[(parent(path), graph.groups[path])].append(path)
    blocks = set()
    for members in siblings.values():
        if len(members) >= 2:
            blocks.update(members)
    # Only the outermost: a repeated block inside a repeated block is collapsed with it.
    return {g for g in blocks if not any(other != g and inside(other, g) for other in blocks)}


def _owner(node: Node, collapsed: list[str]) -> str | None:
    """The outermost collapsed group ``node`` ran inside, if any."""
    if node.op in ("input", "output"):
        return None
    for group in collapsed:
        if inside(group, node.group):
            return group
    return None


def folded(graph: Graph, collapsed=(), plumbing: bool = False) -> Graph:
    """``graph`` with each group of ``collapsed`` as one node (op "group", id -1 - its index in
    the result's groups order) and, unless ``plumbing``, pass-through modules contracted."""
    collapsed = sorted(set(collapsed) - {""}, key=lambda g: (g.count("."), g))
    groups_out = [g for g in collapsed if not any(o != g and inside(o, g) for o in collapsed)]
    members: dict[str, list[Node]] = defaultdict(list)
    owner_of: dict[int, int] = {}
    for node in graph.nodes:
        group = _owner(node, groups_out)
        if group is not None:
            members[group].append(node)
    group_ids = {g: -1 - k for k, g in enumerate(groups_out)}
    for group, nodes in members.items():
        for node in nodes:
            owner_of[node.id] = group_ids[group]
    # Each group node takes the place of its first member: execution order is kept.
    nodes: list[Node] = []
    placed = set()
    for node in graph.nodes:
        gid = owner_of.get(node.id)
        if gid is None:
            nodes.append(node)
        elif gid not in placed:
            placed.add(gid)
            group = groups_out[-1 - gid]
            inner = members[group]
            out_ids = {s for s, t in graph.edges if owner_of.get(s) == gid and owner_of.get(t) != gid}
            last_out = [n for n in inner if n.id in out_ids] or inner
            nodes.append(Node(gid, group, "group", graph.groups.get(group, "group"), last_out[-1].shape,
                              sum(n.params for n in inner), parent(group), None))
    edges: dict[tuple[int, int], None] = {}
    for s, t in graph.edges:
        s, t = owner_of.get(s, s), owner_of.get(t, t)
        if s != t:
            edges[(s, t)] = None
    result = Graph(nodes, list(edges), graph.groups)
    return result if plumbing else _without_plumbing(result)


def _without_plumbing(graph: Graph) -> Graph:
    """Pass-through modules contracted: each one's consumers take its input instead."""
    gone = {n.id for n in graph.nodes if n.op == "module" and n.type in PLUMBING}
    if not gone:
        return graph
    into: dict[int, list[int]] = defaultdict(list)
    for s, t in graph.edges:
        if t in gone:
            into[t].append(s)

    def sources(node_id: int, seen=()) -> list[int]:
        if node_id not in gone:
            return [node_id]
        found = []
        for s in into.get(node_id, []):
            if s not in seen:
                found.extend(sources(s, seen + (node_id,)))
        return found

    edges: dict[tuple[int, int], None] = {}
    for s, t in graph.edges:
        if t in gone:
            continue
        for source in sources(s):
            if source != t:
                edges[(source, t)] = None
    return Graph([n for n in graph.nodes if n.id not in gone], list(edges), graph.groups)
