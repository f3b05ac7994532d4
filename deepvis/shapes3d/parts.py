"""Procedural part-labelled 3-D shapes: point clouds to segment without downloading ShapeNet.

Each category is assembled from primitives (boxes, cylinders and cones, ellipsoids, torus
arcs) whose proportions are drawn per sample, and every primitive belongs to one part. Points
are sampled uniformly over the visible surface (area-weighted; surface that lies inside
another part's solid, such as the wing root inside the fuselage, is dropped, as on a mesh),
rotated at random about the up axis, jittered a little, then normalized to the unit sphere.

Conventions, shared with the readers of real point clouds:

* y is up; shapes stand on the x-z plane before normalization, and the random rotation is
  about y only, so "up" stays meaningful.
* Part ids are global and each category owns its own ids, as in ShapeNet part:
  ``PART_NAMES[i]`` is ``"category/part"``, ``CATEGORIES[category]`` lists that category's
  ids, and a category index is a position in ``CATEGORY_NAMES``.
* Voxel grids cover [-1, 1]^3 and are indexed ``grid[ix, iy, iz]`` with ix along x, iy along
  y (up) and iz along z; cell i of an axis spans [-1 + 2i/R, -1 + 2(i+1)/R). Empty voxels of
  a label grid hold ``BACKGROUND`` (-1).

Everything here is numpy only, so it can be used without torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from deepvis.errors import DeepvisError

_PARTS = {
    "airplane": ["fuselage", "wing", "tail", "engine"],
    "chair": ["seat", "back", "leg"],
    "table": ["top", "leg"],
    "lamp": ["base", "pole", "shade"],
    "mug": ["body", "handle"],
    "guitar": ["body", "neck", "head"],
}
PART_NAMES: list[str] = [f"{c}/{p}" for c, parts in _PARTS.items() for p in parts]
CATEGORIES: dict[str, list[int]] = {c: [PART_NAMES.index(f"{c}/{p}") for p in parts] for c, parts in _PARTS.items()}
CATEGORY_NAMES: list[str] = list(CATEGORIES)
BACKGROUND = -1
"""Label of empty voxels, and of points that metrics should ignore."""

NOISE = 0.005
"""Default Gaussian jitter, as a fraction of the shape's radius (so of the unit sphere)."""


# ---------------------------------------------------------------------------------------
# Primitives. Each is defined in its own local frame and placed by a rotation and an offset;
# it knows its surface area, how to sample its surface uniformly, and (if it is a closed
# solid) which points it hides.


def _rotation(axis: str, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


# Turns a primitive's local y axis (the axis of cylinders and cones) onto +z.
Y_TO_Z = _rotation("x", math.pi / 2)


class Primitive:
    """A surface patch owned by one part, placed by ``rotation`` then ``offset``.

    ``solid`` primitives are closed volumes: other primitives' surface inside them is hidden.
    Open shells (a lamp shade, a mug without its lid) are not solid, so what they surround
    stays visible.
    """

    area: float

    def __init__(self, part: int, rotation=None, offset=(0.0, 0.0, 0.0), solid: bool = True):
        self.part = part
        self.rotation = np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64)
        self.offset = np.asarray(offset, dtype=np.float64)
        self.solid = solid

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` points uniform over this surface, in world coordinates."""
        return self._sample_local(n, rng) @ self.rotation.T + self.offset

    def inside(self, points: np.ndarray) -> np.ndarray:
        """Which world points lie strictly inside this solid (never true for an open shell)."""
        if not self.solid:
            return np.zeros(len(points), dtype=bool)
        return self._inside_local((points - self.offset) @ self.rotation)

    def _sample_local(self, n, rng):
        raise NotImplementedError

    def _inside_local(self, p):
        raise NotImplementedError


# Points this far inside a solid's boundary count as hidden. Points on the boundary itself
# stay, so coplanar outer faces of touching parts are not punched out.
_EPS = 1e-7


class Box(Primitive):
    """Axis-aligned box with half extents ``half`` (x, y, z), centred on its local origin."""

    def __init__(self, part, half, **pose):
        super().__init__(part, **pose)
        self.half = np.asarray(half, dtype=np.float64)
        hx, hy, hz = self.half
        # Face pairs normal to x, y, z.
        self._face_areas = 2 * 4 * np.array([hy * hz, hx * hz, hx * hy])
        self.area = float(self._face_areas.sum())

    def _sample_local(self, n, rng):
        axis = rng.choice(3, size=n, p=self._face_areas / self.area)
        p = rng.uniform(-1.0, 1.0, size=(n, 3))
        p[np.arange(n), axis] = rng.choice([-1.0, 1.0], size=n)
        return p * self.half

    def _inside_local(self, p):
        return np.all(np.abs(p) < self.half - _EPS, axis=1)


class Frustum(Primitive):
    """Truncated cone along local y from -height/2 (radius ``r_bottom``) to +height/2.

    A cylinder has equal radii, a cone ``r_top=0``. ``bottom``/``top`` say which end discs
    are part of the surface; the solid is always the closed frustum.
    """

    def __init__(self, part, r_bottom, r_top, height, bottom=True, top=True, **pose):
        super().__init__(part, **pose)
        self.r0, self.r1, self.h = float(r_bottom), float(r_top), float(height)
        side = math.pi * (self.r0 + self.r1) * math.hypot(self.h, self.r1 - self.r0)
        caps = [math.pi * self.r0**2 if bottom else 0.0, math.pi * self.r1**2 if top else 0.0]
        self._areas = np.array([side, *caps])
        self.area = float(self._areas.sum())

    def _sample_local(self, n, rng):
        which = rng.choice(3, size=n, p=self._areas / self.area)
        u = rng.uniform(size=n)
        theta = rng.uniform(0.0, 2 * math.pi, size=n)
        # Side: the circumference, and so the density along the axis, grows linearly with the
        # radius; invert that CDF for the height fraction t.
        dr = self.r1 - self.r0
        if abs(dr) < 1e-12:
            t = u
        else:
            t = (np.sqrt(self.r0**2 + u * (self.r1**2 - self.r0**2)) - self.r0) / dr
        radius = self.r0 + dr * t
        y = (t - 0.5) * self.h
        # Discs: sqrt for uniform density over the area.
        cap_r = np.sqrt(rng.uniform(size=n))
        radius = np.where(which == 1, self.r0 * cap_r, np.where(which == 2, self.r1 * cap_r, radius))
        y = np.where(which == 1, -self.h / 2, np.where(which == 2, self.h / 2, y))
        return np.stack([radius * np.cos(theta), y, radius * np.sin(theta)], axis=1)

    def _inside_local(self, p):
        t = p[:, 1] / self.h + 0.5
        radius = self.r0 + (self.r1 - self.r0) * t
        return (np.abs(p[:, 1]) < self.h / 2 - _EPS) & (np.hypot(p[:, 0], p[:, 2]) < radius - _EPS)


def _fibonacci_sphere(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    y = 1 - 2 * i / n
    r = np.sqrt(1 - y * y)
    phi = math.pi * (3 - math.sqrt(5)) * i
    return np.stack([r * np.cos(phi), y, r * np.sin(phi)], axis=1)


_SPHERE = _fibonacci_sphere(4096)


class Ellipsoid(Primitive):
    """Ellipsoid with semi-axes ``radii`` (x, y, z), centred on its local origin."""

    def __init__(self, part, radii, **pose):
        super().__init__(part, **pose)
        self.radii = np.asarray(radii, dtype=np.float64)
        # Stretching the unit sphere by diag(a, b, c) scales its area element by
        # abc * |u / radii|; the area is its mean over the sphere (a fixed quadrature,
        # so shapes stay deterministic), and rejection by it makes the samples uniform.
        self._stretch = lambda u: np.linalg.norm(u / self.radii, axis=1)
        self.area = float(4 * math.pi * np.prod(self.radii) * self._stretch(_SPHERE).mean())

    def _sample_local(self, n, rng):
        bound = 1.0 / self.radii.min()
        out = []
        while n > 0:
            u = rng.normal(size=(2 * n + 16, 3))
            u /= np.linalg.norm(u, axis=1, keepdims=True)
            keep = u[rng.uniform(size=len(u)) * bound < self._stretch(u)][:n]
            out.append(keep * self.radii)
            n -= len(keep)
        return np.concatenate(out) if out else np.zeros((0, 3))

    def _inside_local(self, p):
        return np.sum((p / self.radii) ** 2, axis=1) < 1 - _EPS


class TorusArc(Primitive):
    """Tube of radius ``r`` around an arc of radius ``R`` in the local x-y plane.

    The arc runs over angles [angle0, angle1] measured from +x towards +y; its ends are open.
    """

    def __init__(self, part, R, r, angle0, angle1, **pose):
        super().__init__(part, **pose)
        self.R, self.r, self.a0, self.a1 = float(R), float(r), float(angle0), float(angle1)
        self.area = 2 * math.pi * self.r * self.R * (self.a1 - self.a0)

    def _sample_local(self, n, rng):
        u = rng.uniform(self.a0, self.a1, size=n)
        # The tube's outer side is longer than its inner side: area element ~ R + r cos(v).
        v = np.empty(0)
        while len(v) < n:
            cand = rng.uniform(0.0, 2 * math.pi, size=2 * n + 16)
            accept = rng.uniform(size=len(cand)) * (self.R + self.r) < self.R + self.r * np.cos(cand)
            v = np.concatenate([v, cand[accept]])
        v = v[:n]
        ring = self.R + self.r * np.cos(v)
        return np.stack([ring * np.cos(u), ring * np.sin(u), self.r * np.sin(v)], axis=1)

    def _inside_local(self, p):
        angle = np.arctan2(p[:, 1], p[:, 0])
        q = np.hypot(p[:, 0], p[:, 1]) - self.R
        return (q**2 + p[:, 2] ** 2 < (self.r - _EPS) ** 2) & (angle > self.a0) & (angle < self.a1)


def sample_surface(primitives: Sequence[Primitive], n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points uniform over the visible surface of ``primitives``, and their part labels.

    Sampling is area-weighted across primitives; points strictly inside another solid
    primitive are dropped (the survivors stay uniform over what is left), and the pool is
    refilled until ``n`` remain. Returns float64 (n, 3) points and int64 (n,) labels.
    """
    areas = np.array([p.area for p in primitives], dtype=np.float64)
    # Something always shows (the outermost surface is inside nothing), so only a lack of
    # area could keep the loop below from filling up.
    if len(areas) == 0 or not areas.sum() > 0:
        raise DeepvisError("the shape has no surface to sample")
    probs = areas / areas.sum()
    pts, labels, have, keep_rate = [], [], 0, 1.0
    while have < n:
        m = int((n - have) / keep_rate * 1.2) + 64
        counts = rng.multinomial(m, probs)
        batch_pts, batch_lab = [], []
        for i, (prim, k) in enumerate(zip(primitives, counts)):
            if k == 0:
                continue
            p = prim.sample(int(k), rng)
            hidden = np.zeros(len(p), dtype=bool)
            for j, other in enumerate(primitives):
                if j != i:
                    hidden |= other.inside(p)
            batch_pts.append(p[~hidden])
            batch_lab.append(np.full(int((~hidden).sum()), prim.part, dtype=np.int64))
        kept = sum(len(b) for b in batch_pts)
        keep_rate = max(kept / m, 0.05)
        pts += batch_pts
        labels += batch_lab
        have += kept
    pts, labels = np.concatenate(pts), np.concatenate(labels)
    # A uniform subset of uniform samples is still uniform; it also shuffles the order.
    pick = rng.choice(len(pts), size=n, replace=False)
    return pts[pick], labels[pick]


# ---------------------------------------------------------------------------------------
# Categories. Units are arbitrary (about a metre); normalization removes the overall scale,
# so only proportions matter. Parts that meet overlap a little, so the contact face of one
# lies inside the other and is hidden rather than left as an internal sheet.


def _airplane(rng, part):
    fuselage, wing, tail, engine = part["fuselage"], part["wing"], part["tail"], part["engine"]
    r = rng.uniform(0.14, 0.24)
    length = rng.uniform(2.4, 3.4)
    nose = rng.uniform(1.5, 3.0) * r
    tail_len = rng.uniform(0.4, 0.8)
    prims = [
        Frustum(fuselage, r, r, length, rotation=Y_TO_Z),
        Ellipsoid(fuselage, (r, r, nose), offset=(0, 0, length / 2)),
        # Y_TO_Z sends the frustum's bottom backwards: narrow at the back, raised like a real tail.
        Frustum(fuselage, 0.35 * r, r, tail_len, rotation=Y_TO_Z, offset=(0, 0.3 * r, -length / 2 - tail_len / 2)),
    ]
    span = rng.uniform(1.0, 1.7) * length
    chord = rng.uniform(0.14, 0.22) * length
    thick = rng.uniform(0.025, 0.05)
    sweep = rng.uniform(0.0, 0.5)
    wing_y = rng.choice([-0.55, 0.0, 0.55]) * r
    wing_z = rng.uniform(-0.05, 0.15) * length
    half_span = span / 2
    root = np.array([0.0, wing_y, wing_z])
    along = half_span / math.cos(sweep)
    for side in (-1, 1):
        # Each half-wing is a box swept back about y, reaching r into the fuselage.
        rot = _rotation("y", side * sweep)
        direction = side * rot[:, 0]
        prims.append(Box(wing, ((along + r) / 2, thick / 2, chord / 2), rotation=rot,
                         offset=root + direction * (along - r) / 2))
    tail_z = -length / 2 - tail_len * 0.6
    fin_h = rng.uniform(1.5, 3.0) * r
    fin_chord = rng.uniform(0.6, 1.0) * tail_len
    stab_span = rng.uniform(0.25, 0.4) * span
    prims += [
        Box(tail, (thick / 2, fin_h / 2, fin_chord / 2), offset=(0, 0.3 * r + fin_h / 2, tail_z)),
        Box(tail, (stab_span / 2, thick / 2, fin_chord * 0.4), offset=(0, 0.3 * r, tail_z)),
    ]
    er = rng.uniform(0.35, 0.55) * r
    elen = rng.uniform(0.5, 0.8) * chord * 1.4
    n_per_side = rng.choice([1, 2])
    for side in (-1, 1):
        for k in range(n_per_side):
            x = side * half_span * (0.35 + 0.3 * k)
            z = wing_z - math.tan(sweep) * abs(x) + chord * 0.35
            prims.append(Frustum(engine, er, er, elen, rotation=Y_TO_Z, offset=(x, wing_y - thick / 2 - er * 0.9, z)))
    return prims


def _legs(rng, part, half_x, half_z, height, top_y, thickness, round_legs):
    prims = []
    inset = thickness * rng.uniform(0.6, 1.5)
    for sx in (-1, 1):
        for sz in (-1, 1):
            x, z = sx * (half_x - inset), sz * (half_z - inset)
            # Reaching a little above the top's underside buries the contact face.
            h = height + 0.01
            y = top_y - height + h / 2
            if round_legs:
                prims.append(Frustum(part, thickness / 2, thickness / 2, h, offset=(x, y, z)))
            else:
                prims.append(Box(part, (thickness / 2, h / 2, thickness / 2), offset=(x, y, z)))
    return prims


def _chair(rng, part):
    w, d = rng.uniform(0.8, 1.2), rng.uniform(0.8, 1.2)
    t = rng.uniform(0.06, 0.12)
    seat_y = rng.uniform(0.8, 1.2)  # underside of the seat
    back_h, back_t = rng.uniform(0.7, 1.3), rng.uniform(0.05, 0.1)
    tilt = rng.uniform(0.0, 0.3)
    # The back pivots at its foot, which sits on the seat's rear edge.
    back_foot = np.array([0, seat_y + t * 0.5, -d / 2 + back_t / 2])
    back_centre = back_foot + _rotation("x", -tilt) @ np.array([0, back_h / 2, 0])
    prims = [
        Box(part["seat"], (w / 2, t / 2, d / 2), offset=(0, seat_y + t / 2, 0)),
        Box(part["back"], (w / 2, back_h / 2, back_t / 2), rotation=_rotation("x", -tilt), offset=back_centre),
    ]
    leg_t = rng.uniform(0.05, 0.1)
    prims += _legs(rng, part["leg"], w / 2, d / 2, seat_y, seat_y, leg_t, rng.uniform() < 0.4)
    return prims


def _table(rng, part):
    height = rng.uniform(0.7, 1.0)  # underside of the top
    t = rng.uniform(0.04, 0.09)
    leg_t = rng.uniform(0.05, 0.12)
    if rng.uniform() < 0.35:
        radius = rng.uniform(0.5, 0.9)
        prims = [Frustum(part["top"], radius, radius, t, offset=(0, height + t / 2, 0))]
        foot = rng.uniform(0.25, 0.45) * radius * 2
        pole = Frustum(part["leg"], leg_t, leg_t, height + 0.01, offset=(0, (height + 0.01) / 2, 0))
        prims += [pole, Frustum(part["leg"], foot, foot, 0.05, offset=(0, 0.025, 0))]
        return prims
    w, d = rng.uniform(1.2, 2.2), rng.uniform(0.7, 1.2)
    prims = [Box(part["top"], (w / 2, t / 2, d / 2), offset=(0, height + t / 2, 0))]
    return prims + _legs(rng, part["leg"], w / 2, d / 2, height, height, leg_t, rng.uniform() < 0.4)


def _lamp(rng, part):
    base_h = rng.uniform(0.04, 0.12)
    if rng.uniform() < 0.6:
        br = rng.uniform(0.25, 0.45)
        prims = [Frustum(part["base"], br, br * rng.uniform(0.6, 1.0), base_h, offset=(0, base_h / 2, 0))]
    else:
        b = rng.uniform(0.2, 0.4)
        prims = [Box(part["base"], (b, base_h / 2, b), offset=(0, base_h / 2, 0))]
    pole_h = rng.uniform(0.9, 1.6)
    pr = rng.uniform(0.015, 0.035)
    prims.append(Frustum(part["pole"], pr, pr, pole_h + 0.01, offset=(0, base_h + pole_h / 2, 0)))
    sb, st = rng.uniform(0.3, 0.5), rng.uniform(0.1, 0.25)
    sh = rng.uniform(0.3, 0.5)
    # An open shell: the pole's top stays visible inside it.
    prims.append(Frustum(part["shade"], sb, st, sh, bottom=False, top=False, solid=False,
                         offset=(0, base_h + pole_h - sh * 0.3, 0)))
    return prims


def _mug(rng, part):
    r, h = rng.uniform(0.3, 0.5), rng.uniform(0.6, 1.1)
    # Open at the top; solid all the same so the handle's ends vanish into its wall.
    prims = [Frustum(part["body"], r, r * rng.uniform(0.9, 1.1), h, top=False, offset=(0, h / 2, 0))]
    hr = rng.uniform(0.22, 0.35) * h
    tube = rng.uniform(0.03, 0.06)
    handle_y = h * rng.uniform(0.45, 0.55)
    prims.append(TorusArc(part["handle"], hr, tube, -0.55 * math.pi, 0.55 * math.pi, offset=(r * 0.9, handle_y, 0)))
    return prims


def _guitar(rng, part):
    t = rng.uniform(0.08, 0.14)
    lower = rng.uniform(0.35, 0.45)
    upper = lower * rng.uniform(0.7, 0.85)
    # Two overlapping discs (the bouts) facing z, the neck up along y, the head above it.
    prims = [
        Frustum(part["body"], lower, lower, t, rotation=Y_TO_Z, offset=(0, lower, 0)),
        Frustum(part["body"], upper, upper, t, rotation=Y_TO_Z, offset=(0, 2 * lower + upper * 0.5, 0)),
    ]
    body_top = 2 * lower + upper * 1.5
    neck_len, neck_w = rng.uniform(0.8, 1.2), rng.uniform(0.06, 0.1)
    neck_bottom = body_top - upper * 0.3
    prims.append(Box(part["neck"], (neck_w / 2, neck_len / 2, t * 0.3), offset=(0, neck_bottom + neck_len / 2, 0)))
    head_len = rng.uniform(0.2, 0.32)
    tilt = rng.uniform(0.0, 0.3)
    head_rotation = _rotation("x", -tilt)
    head_centre = np.array([0, neck_bottom + neck_len - 0.01, -t * 0.1]) + head_rotation @ np.array([0, head_len / 2, 0])
    prims.append(Box(part["head"], (neck_w * 0.8, head_len / 2, t * 0.25), rotation=head_rotation, offset=head_centre))
    return prims


_BUILDERS = {"airplane": _airplane, "chair": _chair, "table": _table, "lamp": _lamp, "mug": _mug, "guitar": _guitar}


def category_index(category) -> int:
    """Position in ``CATEGORY_NAMES`` of a category given by name or index."""
    if isinstance(category, str):
        if category not in CATEGORIES:
            raise DeepvisError(f"unknown shape category {category!r}; choose from {', '.join(CATEGORY_NAMES)}")
        return CATEGORY_NAMES.index(category)
    index = int(category)
    if not 0 <= index < len(CATEGORY_NAMES):
        raise DeepvisError(f"shape category index {index} is out of range 0..{len(CATEGORY_NAMES) - 1}")
    return index


def category_indices(category, count: int) -> np.ndarray:
    """Int64 (count,) category indices from one name or index, or ``count`` of them."""
    values = np.atleast_1d(np.asarray(category, dtype=object))
    if len(values) not in (1, count):
        raise DeepvisError(f"{len(values)} categories for {count} shapes")
    return np.broadcast_to(np.array([category_index(c) for c in values], dtype=np.int64), (count,)).copy()


def make_shape(category: str, rng: np.random.Generator, points: int = 2048, *, rotate: bool = True,
               noise: float = NOISE) -> tuple[np.ndarray, np.ndarray]:
    """One random shape of ``category``: float32 (points, 3) in the unit sphere, int64 part labels.

    ``rotate`` turns it by a uniform random angle about y (up); ``noise`` is the standard
    deviation of the Gaussian jitter as a fraction of the shape's radius.
    """
    name = CATEGORY_NAMES[category_index(category)]
    if points < 1:
        raise DeepvisError(f"a shape needs at least one point, not {points}")
    part = {PART_NAMES[i].split("/", 1)[1]: i for i in CATEGORIES[name]}
    pts, labels = sample_surface(_BUILDERS[name](rng, part), points, rng)
    if rotate:
        pts = pts @ _rotation("y", rng.uniform(0.0, 2 * math.pi)).T
    if noise > 0:
        radius = np.linalg.norm(pts - pts.mean(axis=0), axis=1).max()
        pts = pts + rng.normal(scale=noise * radius, size=pts.shape)
    return normalize_unit_sphere(pts), labels


def make_dataset(n_per_category: int, points: int = 2048, seed: int = 0,
                 categories: Iterable[str] | None = None, *,
                 first: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n_per_category`` shapes of each category: X (M, points, 3) float32, y (M, points) int64,
    cat (M,) int64 indices into ``CATEGORY_NAMES`` (even when ``categories`` picks a subset).

    Shape k of a category depends only on (seed, category, k, points), so a subset of
    categories reproduces the same shapes, and ``first`` continues a sequence: a training
    loop can draw fresh shapes first..first+n-1 each epoch without repeating any.
    """
    if seed < 0 or first < 0 or n_per_category < 0:
        raise DeepvisError("shape seeds and counts must be non-negative")
    names = CATEGORY_NAMES if categories is None else list(categories)
    indices = [category_index(c) for c in names]
    X, y, cat = [], [], []
    for ci in indices:
        for k in range(first, first + n_per_category):
            pts, labels = make_shape(CATEGORY_NAMES[ci], np.random.default_rng((seed, ci, k)), points)
            X.append(pts)
            y.append(labels)
            cat.append(ci)
    if not X:  # n_per_category == 0 or no categories
        return np.zeros((0, points, 3), np.float32), np.zeros((0, points), np.int64), np.zeros(0, np.int64)
    return np.stack(X), np.stack(y), np.array(cat, dtype=np.int64)


def normalize_unit_sphere(points) -> np.ndarray:
    """Centre (N, 3) points on their centroid and scale so the farthest is at distance 1.

    The centroid, unlike the bounding-box centre, turns with the shape, so a shape rotated
    about y normalizes to the same cloud rotated. Returns float32.
    """
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or len(p) == 0:
        raise DeepvisError(f"expected a point cloud of shape (N, 3), got {tuple(p.shape)}")
    if not np.isfinite(p).all():
        raise DeepvisError("the point cloud contains NaN or infinite coordinates")
    p = p - p.mean(axis=0)
    radius = np.linalg.norm(p, axis=1).max()
    if radius == 0:
        raise DeepvisError("cannot normalize a point cloud whose points all coincide")
    return (p / radius).astype(np.float32)


# ---------------------------------------------------------------------------------------
# Voxels.


def voxel_indices(points, resolution: int = 32) -> np.ndarray:
    """Int64 (N, 3) [ix, iy, iz] of the voxel each point of an (N, 3) cloud in [-1, 1]^3 falls in."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise DeepvisError(f"expected a point cloud of shape (N, 3), got {tuple(p.shape)}")
    if resolution < 1:
        raise DeepvisError(f"voxel resolution must be positive, not {resolution}")
    if len(p) and np.abs(p).max() > 1 + 1e-5:
        raise DeepvisError("points lie outside [-1, 1]^3; normalize the cloud to the unit sphere first")
    # Cell i spans [-1 + 2i/R, -1 + 2(i+1)/R); the clip puts coordinate +1 in the last cell.
    return np.clip(np.floor((p + 1.0) * (resolution / 2.0)).astype(np.int64), 0, resolution - 1)


def _flat_index(points, resolution: int) -> np.ndarray:
    ijk = voxel_indices(points, resolution)
    return (ijk[:, 0] * resolution + ijk[:, 1]) * resolution + ijk[:, 2]


def voxelize(points, resolution: int = 32) -> np.ndarray:
    """Occupancy of a (R, R, R) grid over [-1, 1]^3, indexed [ix, iy, iz]: True where a point falls."""
    grid = np.zeros(resolution**3, dtype=bool)
    grid[_flat_index(points, resolution)] = True
    return grid.reshape((resolution,) * 3)


def voxelize_labels(points, labels, resolution: int = 32) -> np.ndarray:
    """Int64 (R, R, R) grid like ``voxelize``: each occupied voxel holds the most common label of
    its points (ties go to the smaller id), empty voxels hold ``BACKGROUND``.
    """
    flat = _flat_index(points, resolution)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(labels) != len(flat):
        raise DeepvisError(f"{len(flat)} points but {len(labels)} labels")
    if len(labels) and labels.min() < 0:
        raise DeepvisError("point labels must be non-negative part ids")
    grid = np.full(resolution**3, BACKGROUND, dtype=np.int64)
    if len(labels) == 0:
        return grid.reshape((resolution,) * 3)
    n_labels = int(labels.max()) + 1
    # Count (voxel, label) pairs only for the occupied voxels, then vote.
    occupied, voxel = np.unique(flat, return_inverse=True)
    counts = np.zeros((len(occupied), n_labels), dtype=np.int64)
    np.add.at(counts, (voxel, labels), 1)
    grid[occupied] = counts.argmax(axis=1)
    return grid.reshape((resolution,) * 3)


# ---------------------------------------------------------------------------------------
# Metrics and predictions.


def part_mask(categories: dict[str, list[int]] | None = None) -> np.ndarray:
    """Bool (categories, parts): which part ids each category owns."""
    categories = CATEGORIES if categories is None else categories
    n_parts = max(i for ids in categories.values() for i in ids) + 1
    mask = np.zeros((len(categories), n_parts), dtype=bool)
    for c, ids in enumerate(categories.values()):
        mask[c, ids] = True
    return mask


def shape_miou(pred, true, part_ids: Sequence[int]) -> float:
    """Mean IoU over ``part_ids`` for one shape, ShapeNet-style.

    A part absent from both prediction and truth scores 1; points whose true label is
    negative (``BACKGROUND``, e.g. empty voxels) are ignored. A prediction outside
    ``part_ids`` is simply wrong.
    """
    pred = np.asarray(pred).reshape(-1)
    true = np.asarray(true).reshape(-1)
    if pred.shape != true.shape:
        raise DeepvisError(f"prediction has {pred.size} labels but the truth has {true.size}")
    valid = true >= 0
    pred, true = pred[valid], true[valid]
    ious = []
    for part in part_ids:
        p, t = pred == part, true == part
        union = np.count_nonzero(p | t)
        ious.append(1.0 if union == 0 else np.count_nonzero(p & t) / union)
    return float(np.mean(ious))


class MeanIoU(NamedTuple):
    instance: float
    """Mean over shapes of each shape's mIoU (ShapeNet's "instance mIoU")."""
    per_category: dict[str, float]
    """Mean shape mIoU of each category present."""

    @property
    def category_mean(self) -> float:
        """Mean over categories (ShapeNet's "class mIoU")."""
        return float(np.mean(list(self.per_category.values())))


def miou(pred, true, cat, categories: dict[str, list[int]] | None = None) -> MeanIoU:
    """ShapeNet-style part mIoU of a batch of shapes.

    ``pred`` and ``true`` are (M, N) labels (or M sequences of varying length); ``cat`` is
    (M,) category indices into ``categories`` (default ``CATEGORIES``), which tells each
    shape's parts.
    """
    categories = CATEGORIES if categories is None else categories
    names = list(categories)
    cat = np.asarray(cat, dtype=np.int64).reshape(-1)
    if len(pred) != len(cat) or len(true) != len(cat):
        raise DeepvisError(f"{len(pred)} predictions and {len(true)} truths for {len(cat)} categories")
    if len(cat) == 0:
        raise DeepvisError("no shapes to score")
    scores = np.array([shape_miou(p, t, categories[names[c]]) for p, t, c in zip(pred, true, cat)])
    per_category = {names[c]: float(scores[cat == c].mean()) for c in sorted(set(cat.tolist()))}
    return MeanIoU(float(scores.mean()), per_category)


def labels_from_logits(logits, category=None, valid=None, categories: dict[str, list[int]] | None = None) -> np.ndarray:
    """Part labels from (B, parts, ...) scores, each shape restricted to one category's parts.

    ``category`` is (B,) category indices, or None to pick, per shape, the category whose
    parts hold the most softmax mass on average over its ``valid`` positions (bool
    (B, ...); default all). Invalid positions get ``BACKGROUND``. Returns int64 (B, ...).
    """
    logits = np.asarray(logits, dtype=np.float64)
    mask = part_mask(categories)
    b = logits.shape[0]
    valid = np.ones((b, *logits.shape[2:]), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if category is None:
        z = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(z)
        probs /= probs.sum(axis=1, keepdims=True)
        flat_p = probs.reshape(b, probs.shape[1], -1)
        flat_v = valid.reshape(b, 1, -1)
        mean_p = (flat_p * flat_v).sum(axis=2) / np.maximum(flat_v.sum(axis=2), 1)  # (B, parts)
        category = (mean_p @ mask.T).argmax(axis=1)
    category = np.asarray(category, dtype=np.int64).reshape(b)
    allowed = mask[category].reshape(b, mask.shape[1], *([1] * (logits.ndim - 2)))
    labels = np.where(allowed, logits, -np.inf).argmax(axis=1)
    return np.where(valid, labels, BACKGROUND)
