"""A vision transformer's attention: each block's per-head probabilities, and rollout.

Fused attention never forms the probability matrix, so a hook on a softmax collects nothing
(vit-explain #23): ``nn.MultiheadAttention`` called with ``need_weights=False`` (torchvision's
ViT, most hand-written ones) takes a kernel that returns no weights, and
``nn.TransformerEncoderLayer`` in eval mode skips the module's forward altogether. While
attention is captured, each ``nn.MultiheadAttention`` runs written out here (softmax(q k^T /
sqrt(d)) v), so the probabilities it returns are the ones its output is made from and carry
gradients (PyTorch's own path returns a view no gradient reaches), and the forward runs with
autograd on, which keeps the encoder layers off their fused path; all is restored afterwards.
timm's attention is switched off its fused path and read where its probabilities enter
``attn_drop``; Hugging Face attention (transformers 5: q/k/v projections, an attention
function chosen by ``config._attn_implementation``) is switched to its "eager" function,
which returns the probabilities its output is made from.

Rollout (Abnar & Zuidema 2020): per block the heads' mean, plus the identity for the residual
(0.5 A + 0.5 I), rows renormalized, multiplied through the blocks; the CLS row over the patches
is the map. Gradient-weighted rollout (after Chefer et al. 2021): per block the heads' mean of
the positive part of grad(score) * A, accumulated as R <- R + A_bar R from R = I.
"""

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from deepvis.errors import DeepvisError


@dataclass(frozen=True)
class Attention:
    layers: tuple[str, ...]  # module paths, in call order
    probabilities: tuple[torch.Tensor, ...]  # (B, heads, N, N) each, rows summing to 1


def attention_modules(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """nn.MultiheadAttention modules, timm's attention (a ``fused_attn`` switch and an
    ``attn_drop`` the probabilities pass through on the explicit path) and Hugging Face's."""
    # TorchScript modules are none of these: their forward cannot be switched or hooked (and
    # their submodule dictionaries have no .get).
    return [(path, m) for path, m in module.named_modules() if not isinstance(m, torch.jit.ScriptModule)
            and (isinstance(m, nn.MultiheadAttention) or _is_timm(m) or _is_hf(m))]


# Both tests look in the module's own dictionaries: getattr on an nn.Module that lacks the name
# raises and catches an AttributeError inside, which over a ViT's ~150 modules cost a
# millisecond a capture.
def _is_hf(m: nn.Module) -> bool:
    children = m._modules
    return (all(isinstance(children.get(name), nn.Linear) for name in ("q_proj", "k_proj", "v_proj"))
            and hasattr(m.__dict__.get("config"), "_attn_implementation"))


def _is_timm(m: nn.Module) -> bool:
    return "fused_attn" in m.__dict__ and isinstance(m._modules.get("attn_drop"), nn.Module)


@contextlib.contextmanager
def explicit_attention(module: nn.Module, keep_graph: bool = False, modules=None):
    """Within the block, every forward of ``module`` records its attention probabilities into
    the yielded list as (path, (B, heads, N, N)); detached unless ``keep_graph``. ``modules``:
    ``attention_modules(module)`` if the caller has them already."""
    records: list[tuple[str, torch.Tensor]] = []
    patched, fused, handles = [], [], []
    configs = {}
    for path, mha in attention_modules(module) if modules is None else modules:
        if _is_hf(mha):
            # The eager function returns (output, probabilities); sdpa returns no probabilities.
            configs.setdefault(id(mha.config), (mha.config, mha.config._attn_implementation))
            mha.config._attn_implementation = "eager"

            def hook(_mod, _inputs, output, _path=path):
                weights = output[1]
                records.append((_path, weights if keep_graph else weights.detach()))

            handles.append(mha.register_forward_hook(hook))
            continue
        if _is_timm(mha):
            # timm's explicit path: softmax(q k^T) goes through attn_drop (the identity in eval)
            # and on into the output, so its input is the matrix used, gradients included.
            fused.append((mha, mha.fused_attn))
            mha.fused_attn = False

            def pre_hook(_mod, inputs, _path=path):
                records.append((_path, inputs[0] if keep_graph else inputs[0].detach()))

            handles.append(mha.attn_drop.register_forward_pre_hook(pre_hook))
            continue
        original = mha.forward

        def forward(*args, _original=original, _path=path, _mha=mha, **kwargs):
            names = ("query", "key", "value", "key_padding_mask", "need_weights", "attn_mask",
                     "average_attn_weights", "is_causal")
            call = dict(zip(names, args), **kwargs)
            if _explicit_supported(_mha, call):
                out, weights = _explicit_forward(_mha, call)
            else:
                call.update(need_weights=True, average_attn_weights=False)
                out, weights = _original(**call)
                if keep_graph:
                    # PyTorch returns a view of the probabilities it used: no gradient reaches it.
                    raise DeepvisError(f"{_path} uses attention options (separate key/value sizes, bias_k, "
                                       f"zero attention, causal) whose gradients cannot be read here")
            records.append((_path, weights if keep_graph else weights.detach()))
            return out, weights

        mha.forward = forward  # an instance attribute: nn.Module.__call__ finds it before the class's
        patched.append(mha)
    # nn.TransformerEncoderLayer takes its fused path whenever autograd is off; other models need
    # autograd only when the probabilities' gradients are wanted (it costs a graph per forward).
    fused_layers = (any(isinstance(mha, nn.MultiheadAttention) for mha in patched)
                    and any(isinstance(m, nn.TransformerEncoderLayer) for m in module.modules()))
    # Inference mode, as a bare live forward runs, when nothing will be differentiated.
    grad = torch.enable_grad() if keep_graph or fused_layers else torch.inference_mode()
    try:
        with grad:
            yield records
    finally:
        for mha in patched:
            del mha.forward
        for mha, was in fused:
            mha.fused_attn = was
        for handle in handles:
            handle.remove()
        for config, implementation in configs.values():
            config._attn_implementation = implementation


def _explicit_supported(mha: nn.MultiheadAttention, call: dict) -> bool:
    """The configurations vision transformers use: one projection for q, k, v, no extra key/value
    biases or zero attention, no causal flag."""
    return (mha._qkv_same_embed_dim and mha.bias_k is None and not mha.add_zero_attn
            and not call.get("is_causal", False) and mha.in_proj_weight is not None)


def _explicit_forward(mha: nn.MultiheadAttention, call: dict):
    """nn.MultiheadAttention written out, so that the (B, heads, N, N) probabilities returned are
    the ones the output is computed from and gradients reach them."""
    from torch.nn import functional as F

    query, key, value = call["query"], call["key"], call["value"]
    if not mha.batch_first:
        query, key, value = (t.transpose(0, 1) for t in (query, key, value))
    b, n, c = query.shape
    heads, d = mha.num_heads, c // mha.num_heads
    w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
    b_q, b_k, b_v = mha.in_proj_bias.chunk(3) if mha.in_proj_bias is not None else (None, None, None)
    q = F.linear(query, w_q, b_q).reshape(b, n, heads, d).transpose(1, 2)
    k = F.linear(key, w_k, b_k).reshape(b, key.shape[1], heads, d).transpose(1, 2)
    v = F.linear(value, w_v, b_v).reshape(b, value.shape[1], heads, d).transpose(1, 2)
    scores = q @ k.transpose(-1, -2) / (d ** 0.5)
    mask = call.get("attn_mask")
    if mask is not None:
        mask = mask.reshape(b, heads, n, -1) if mask.ndim == 3 else mask
        scores = scores.masked_fill(mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    padding = call.get("key_padding_mask")
    if padding is not None:
        padding = padding[:, None, None, :]
        scores = scores.masked_fill(padding, float("-inf")) if padding.dtype == torch.bool else scores + padding
    probabilities = torch.softmax(scores, dim=-1)
    mixed = F.dropout(probabilities, mha.dropout, training=mha.training) @ v
    out = mha.out_proj(mixed.transpose(1, 2).reshape(b, n, c))
    if not mha.batch_first:
        out = out.transpose(0, 1)
    return out, probabilities


def capture_attention(module: nn.Module, x: torch.Tensor):
    """The model's output and its attention for ``x``."""
    modules = attention_modules(module)
    if not modules:
        raise DeepvisError("no attention here: attention maps need a vision transformer's attention blocks "
                           "(nn.MultiheadAttention, timm or Hugging Face attention)")
    with explicit_attention(module, modules=modules) as records:
        out = module(x)
    if not records:
        raise DeepvisError("the attention modules did not run for this input")
    return _detach(out), Attention(tuple(p for p, _ in records), tuple(w for _, w in records))


def rollout(probabilities, prefix: int, grid: tuple[int, int], residual: float = 0.5) -> torch.Tensor:
    """(B, H, W): how much each patch flows into the CLS token through all the blocks."""
    rolled = None
    for a in probabilities:
        a = a.float().mean(1)  # heads
        eye = torch.eye(a.shape[-1], device=a.device).expand_as(a)
        a = residual * eye + (1 - residual) * a
        a = a / a.sum(-1, keepdim=True)
        rolled = a if rolled is None else a @ rolled
    return _cls_row(rolled, prefix, grid)


def grad_rollout(probabilities, gradients, prefix: int, grid: tuple[int, int]) -> torch.Tensor:
    """(B, H, W): rollout of the gradient-weighted attention, positive parts only."""
    relevance = None
    for a, g in zip(probabilities, gradients):
        weighted = (g * a).clamp(min=0).float().mean(1)
        if relevance is None:
            relevance = torch.eye(a.shape[-1], device=a.device).expand_as(weighted).clone()
        relevance = relevance + weighted @ relevance
    return _cls_row(relevance, prefix, grid)


def _cls_row(matrix: torch.Tensor, prefix: int, grid: tuple[int, int]) -> torch.Tensor:
    n = matrix.shape[-1]
    if n != prefix + grid[0] * grid[1]:
        raise DeepvisError(f"the attention covers {n} tokens, the patch grid {grid[0]}x{grid[1]} with {prefix} "
                           f"prefix tokens {prefix + grid[0] * grid[1]}")
    return matrix[:, 0, prefix:].reshape(matrix.shape[0], *grid)


def _detach(value):
    if torch.is_tensor(value):
        return value.detach()
    if isinstance(value, (list, tuple)):
        return type(value)(_detach(v) for v in value)
    if isinstance(value, dict):
        return {k: _detach(v) for k, v in value.items()}
    return value
