"""Paths through a generator's latent space: interpolations, grids, walks, principal
directions (GANSpace) and projecting an image into the space (iGAN).

Latent rows are torch tensors (N, nz) sampled from N(0, I). In high dimensions such samples
lie near the shell ||z|| = sqrt(nz); a straight line between two of them dips inside it
(towards the mean, where samples look washed out), which is why ``slerp`` is the default.
"""

import numpy as np
import torch

from deepvis.errors import Cancelled, DeepvisError
from deepvis.generative.generators import Generator

MODES = ("slerp", "lerp")


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    t = t.reshape(-1, 1)
    return a * (1 - t) + b * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Along the great circle from ``a`` to ``b``, the norm interpolated linearly."""
    t = t.reshape(-1, 1)
    na, nb = a.norm(), b.norm()
    ua, ub = a / na, b / nb
    omega = torch.arccos(torch.clamp((ua * ub).sum(), -1.0, 1.0))
    if float(omega) < 1e-6:
        return lerp(a, b, t)
    so = torch.sin(omega)
    direction = (torch.sin((1 - t) * omega) / so) * ua + (torch.sin(t * omega) / so) * ub
    return direction * (na * (1 - t) + nb * t)


def path(points: torch.Tensor, steps: int, mode: str = "slerp") -> torch.Tensor:
    """``steps`` latent rows from the first point through each next one to the last (closed
    ends: the first row is ``points[0]``, the last ``points[-1]``)."""
    if mode not in MODES:
        raise DeepvisError(f"unknown interpolation {mode!r}: expected slerp or lerp")
    if len(points) < 2:
        raise DeepvisError("a path needs at least two latent points")
    if steps < 2:
        raise DeepvisError("a path needs at least 2 steps")
    segments = len(points) - 1
    s = torch.linspace(0, segments, steps)
    index = torch.clamp(s.floor().long(), max=segments - 1)
    t = s - index
    step = slerp if mode == "slerp" else lerp
    return torch.cat([step(points[i], points[i + 1], t[j:j + 1]) for j, i in enumerate(index.tolist())])


def corner_grid(corners: torch.Tensor, rows: int, cols: int, mode: str = "slerp") -> torch.Tensor:
    """rows x cols latents interpolated between four corners (top-left, top-right,
    bottom-left, bottom-right): (rows * cols, nz), row-major."""
    if len(corners) != 4:
        raise DeepvisError("a corner grid needs four latent points")
    left = path(corners[[0, 2]], rows, mode)
    right = path(corners[[1, 3]], rows, mode)
    return torch.cat([path(torch.stack([left[r], right[r]]), cols, mode) for r in range(rows)])


def random_walk(start: torch.Tensor, steps: int, step_size: float = 0.15, seed: int = 0) -> torch.Tensor:
    """A smooth wander for animation: momentum noise, pulled back to the prior's shell."""
    g = torch.Generator().manual_seed(seed)
    z, velocity = start.clone().reshape(-1), torch.zeros_like(start.reshape(-1))
    radius = float(np.sqrt(z.numel()))
    out = []
    for _ in range(steps):
        velocity = 0.9 * velocity + step_size * torch.randn(z.shape, generator=g)
        z = z + velocity
        z = z * (radius / z.norm()) ** 0.2  # drift back towards ||z|| = sqrt(nz), softly
        out.append(z.clone())
    return torch.stack(out)


def principal_directions(generator: Generator, count: int = 8, samples: int = 2000, layer: str | None = None,
                         seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """GANSpace: PCA of an early layer's activations over many samples, mapped back to
    latent directions by least squares. Returns unit directions (count, nz) and the share of
    the activations' variance each explains."""
    from sklearn.decomposition import PCA

    from deepvis.core.probe import Probe

    z = generator.latent(seed, samples)
    module = generator.module
    probe = Probe(module, z[:1].reshape(1, generator.nz, 1, 1) if generator._spatial_input else z[:1])
    rectified = [info.name for info in probe.layers if info.path and info.type_name in ("ReLU", "LeakyReLU")]
    name = layer or (rectified[0] if rectified else probe.layers[0].name)
    with torch.inference_mode():
        x = z.reshape(samples, generator.nz, 1, 1) if generator._spatial_input else z
        _, acts = probe.capture(x, [name])
    features = acts[name].reshape(samples, -1).float().numpy()
    pca = PCA(n_components=min(count, generator.nz, samples), random_state=seed).fit(features)
    coeffs = pca.transform(features)  # (samples, count)
    # The latent direction that moves each component: least squares z ~ coeffs @ D.
    directions, *_ = np.linalg.lstsq(coeffs, z.numpy() - z.numpy().mean(0), rcond=None)
    directions = torch.from_numpy(directions.astype(np.float32))
    directions = directions / directions.norm(dim=1, keepdim=True)
    return directions, pca.explained_variance_ratio_.astype(np.float32)


def edit(z: torch.Tensor, directions: torch.Tensor, strengths) -> torch.Tensor:
    """``z`` moved along each direction by its strength (in units of the prior's std)."""
    strengths = torch.as_tensor(np.asarray(strengths, np.float32)).reshape(-1, 1)
    return z.reshape(1, -1) + (strengths * directions[:len(strengths)]).sum(0, keepdim=True)


def invert(generator: Generator, image: np.ndarray, steps: int = 300, restarts: int = 4, lr: float = 0.05,
           seed: int = 0, prior_weight: float = 1e-3, features=None, feature_weight: float = 0.1,
           progress=None, cancel=None, start: torch.Tensor | None = None) -> tuple[torch.Tensor, list[float]]:
    """Find z whose sample looks like ``image`` (uint8 H, W, C at the generator's size):
    Adam on the pixel error from several random starts, a small pull towards the prior's
    shell keeping z plausible. ``features`` (images in [0, 1], N x C x H x W -> N x D), when
    given, adds the distance between the two images' features (a perceptual loss: what a
    classifier sees rather than every pixel). ``start`` (1, nz), an encoder's projection, is
    refined instead of random starts. Returns z (1, nz) and the pixel error per step of the
    best start."""
    target = _as_output(generator, image)
    lo, hi = (b.to(generator.device) for b in generator.bounds())
    target_features = None
    if features is not None:
        with torch.no_grad():
            target_features = features((target - lo) / (hi - lo))
    g = torch.Generator().manual_seed(seed)
    if start is None:
        z = torch.randn(restarts, generator.nz, generator=g)
    else:
        # The first run starts exactly at ``start`` (an encoder's guess); others nearby.
        z = start.reshape(1, -1).float().cpu().repeat(restarts, 1)
        z[1:] += 0.5 * torch.randn(restarts - 1, generator.nz, generator=g)
    z = z.to(generator.device).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    history = []
    module = generator.module
    was_training = module.training
    module.eval()
    with torch.enable_grad():
        for step in range(steps):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            opt.zero_grad()
            out = generator.generate(z)
            errors = ((out - target) ** 2).flatten(1).mean(1)
            shell = ((z.norm(dim=1) - np.sqrt(generator.nz)) ** 2)
            total = errors.sum() + prior_weight * shell.sum()
            if target_features is not None:
                diff = features((out - lo) / (hi - lo)) - target_features
                total = total + feature_weight * (diff ** 2).flatten(1).mean(1).sum()
            total.backward()
            opt.step()
            history.append(errors.detach())
            if progress is not None and step % 10 == 0:
                progress((step + 1) / steps, float(errors.min()))
    module.train(was_training)
    final = torch.stack(history)
    best = int(final[-1].argmin())
    return z[best:best + 1].detach(), final[:, best].tolist()


def _as_output(generator: Generator, image: np.ndarray) -> torch.Tensor:
    from deepvis.io.images import quiet_cv2

    with torch.inference_mode():
        sample = generator.generate(generator.latent(0, 1))
    _, c, h, w = sample.shape
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[:2] != (h, w):
        cv2 = quiet_cv2()
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        image = image[:, :, None] if image.ndim == 2 else image
    image = image.astype(np.float32)
    if c == 1 and image.shape[2] == 3:
        image = image.mean(2, keepdims=True)
    elif c == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    lo, hi = generator.bounds()
    scaled = torch.from_numpy(image[:, :, :c] / 255.0).permute(2, 0, 1)[None] * (hi - lo) + lo
    return scaled.to(generator.device)


def project(generator: Generator, image: np.ndarray, refine_steps: int = 0, lr: float = 0.05, progress=None,
            cancel=None) -> tuple[torch.Tensor, list[float]]:
    """z for ``image`` by the generator's encoder in one pass, then ``refine_steps`` of
    :func:`invert` from there. Returns z (1, nz) and the pixel error: the encoder's, then one per
    refining step."""
    start = generator.encode([image]).reshape(1, -1)
    target = _as_output(generator, image)
    with torch.inference_mode():
        first = float(((generator.generate(start) - target) ** 2).mean())
    if refine_steps <= 0:
        return start, [first]
    z, errors = invert(generator, image, steps=refine_steps, restarts=1, lr=lr, start=start, progress=progress,
                       cancel=cancel)
    return z, [first, *errors]


def model_features(model, layer: str | None = None):
    """A differentiable ``features`` for :func:`invert` from a loaded classifier: images in
    [0, 1] are resized to its input, normalized, and read at ``layer`` (default: the layer
    before its head)."""
    from deepvis.core.inputspec import match_channels
    from deepvis.core.probe import Probe

    probe = Probe(model.module, model.example_input())
    name = layer or probe.feature_layer().name
    spec = model.spec
    mean = torch.tensor(spec.mean, dtype=torch.float32).reshape(1, -1, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32).reshape(1, -1, 1, 1)

    def features(images: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.interpolate(images, size=(spec.height, spec.width), mode="bilinear",
                                            align_corners=False)
        x = match_channels(x, spec.channels)
        _, acts = probe.capture((x - mean.to(x)) / std.to(x), [name], detach=False)
        return acts[name].flatten(1)

    return features
