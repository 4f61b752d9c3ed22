"""Shared fixtures of the GLIDE tests: toy options and an independent restatement of the release.

``reference_forward`` re-derives openai/glide-text2im's ``Text2ImUNet`` forward pass from its
published structure, as plain functions over the release's state-dict keys: the module layout
loop of ``UNetModel.__init__`` (which blocks exist at which index), ``ResBlock`` with scale-shift
norm and in-block resampling, ``QKVAttention`` (per-head q|k|v, text keys/values in front,
``1/sqrt(sqrt(ch))`` on q and k), the CLIP-style text transformer and the padding embedding. It
shares no code with the plugin. ``slip`` plants one deliberate mistake, to prove the comparison
would catch it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

#: A toy model in the release's option vocabulary: two heads per attention block, two levels.
TOY_OPTIONS: dict[str, Any] = {
    "image_size": 8,
    "num_channels": 32,
    "num_res_blocks": 1,
    "channel_mult": "1,2",
    "num_heads": 1,
    "num_head_channels": 16,
    "num_heads_upsample": -1,
    "attention_resolutions": "8,4",
    "dropout": 0.0,
    "text_ctx": 6,
    "xf_width": 32,
    "xf_layers": 2,
    "xf_heads": 2,
    "xf_final_ln": True,
    "xf_padding": True,
    "use_scale_shift_norm": True,
    "resblock_updown": True,
}
TOY_VOCAB = 50


def toy_config(super_res: bool = False) -> dict[str, Any]:
    """The :class:`GLIDEUNetModel` fields equal to ``TOY_OPTIONS`` (with 32 norm groups)."""
    return {
        "sample_size": 8,
        "in_channels": 6 if super_res else 3,
        "model_channels": 32,
        "channel_mult": (1, 2),
        "num_res_blocks": 1,
        "attention_resolutions": (8, 4),
        "num_head_channels": 16,
        "dropout": 0.0,
        "text_ctx": 6,
        "xf_width": 32,
        "xf_layers": 2,
        "xf_heads": 2,
        "vocab_size": TOY_VOCAB,
    }


def small_config(super_res: bool = False, vocab_size: int = TOY_VOCAB) -> dict[str, Any]:
    """A smaller toy than :func:`toy_config` (attention at 4 px only, one text layer): the model
    contract's and the pipeline's."""
    return {
        **toy_config(super_res),
        "attention_resolutions": (4,),
        "xf_layers": 1,
        "vocab_size": vocab_size,
    }


def _gn(x: Tensor, sd: Mapping[str, Tensor], key: str) -> Tensor:
    return F.group_norm(x.float(), 32, sd[key + ".weight"], sd[key + ".bias"], 1e-5)


def _resblock(
    x: Tensor, emb: Tensor, sd: Mapping[str, Tensor], p: str, updown: str | None
) -> Tensor:
    h = F.silu(_gn(x, sd, p + ".in_layers.0"))
    if updown == "down":
        h, x = F.avg_pool2d(h, 2), F.avg_pool2d(x, 2)
    elif updown == "up":
        h, x = F.interpolate(h, scale_factor=2.0), F.interpolate(x, scale_factor=2.0)
    h = F.conv2d(h, sd[p + ".in_layers.2.weight"], sd[p + ".in_layers.2.bias"], padding=1)
    e = F.linear(F.silu(emb), sd[p + ".emb_layers.1.weight"], sd[p + ".emb_layers.1.bias"])
    scale, shift = e[:, :, None, None].chunk(2, dim=1)
    h = _gn(h, sd, p + ".out_layers.0") * (1 + scale) + shift
    h = F.conv2d(F.silu(h), sd[p + ".out_layers.3.weight"], sd[p + ".out_layers.3.bias"], padding=1)
    if p + ".skip_connection.weight" in sd:
        x = F.conv2d(x, sd[p + ".skip_connection.weight"], sd[p + ".skip_connection.bias"])
    return x + h


def _attention(
    x: Tensor, enc: Tensor, sd: Mapping[str, Tensor], p: str, head_ch: int, slip: str | None
) -> Tensor:
    b, c, hh, ww = x.shape
    heads = c // head_ch
    flat = _gn(x, sd, p + ".norm").reshape(b, c, -1)
    qkv = F.conv1d(flat, sd[p + ".qkv.weight"], sd[p + ".qkv.bias"])
    if slip == "qkv":  # q|k|v as three blocks (most libraries), not per head
        q, k, v = (t.reshape(b * heads, head_ch, -1) for t in qkv.chunk(3, dim=1))
    else:
        q, k, v = qkv.reshape(b * heads, 3 * head_ch, -1).split(head_ch, dim=1)
    ekv = F.conv1d(enc, sd[p + ".encoder_kv.weight"], sd[p + ".encoder_kv.bias"])
    ek, ev = ekv.reshape(b * heads, 2 * head_ch, -1).split(head_ch, dim=1)
    k, v = torch.cat([ek, k], dim=-1), torch.cat([ev, v], dim=-1)
    scale = 1 / math.sqrt(head_ch) if slip == "scale" else 1 / math.sqrt(math.sqrt(head_ch))
    weight = torch.einsum("bct,bcs->bts", q * scale, k * scale).softmax(dim=-1)
    out = torch.einsum("bts,bcs->bct", weight, v).reshape(b, c, -1)
    out = F.conv1d(out, sd[p + ".proj_out.weight"], sd[p + ".proj_out.bias"])
    return x + out.reshape(b, c, hh, ww)


def _layer_norm(x: Tensor, sd: Mapping[str, Tensor], key: str) -> Tensor:
    return F.layer_norm(x, x.shape[-1:], sd[key + ".weight"], sd[key + ".bias"])


def _text(
    tokens: Tensor, mask: Tensor, sd: Mapping[str, Tensor], o: Mapping[str, Any], slip: str | None
) -> tuple[Tensor, Tensor]:
    x = sd["token_embedding.weight"][tokens] + sd["positional_embedding"][None]
    if slip != "padding":
        x = torch.where(mask[..., None], x, sd["padding_embedding"][None])
    b, n, width = x.shape
    heads = o["xf_heads"]
    attn_ch = width // heads
    for i in range(o["xf_layers"]):
        p = f"transformer.resblocks.{i}"
        h = _layer_norm(x, sd, p + ".ln_1")
        qkv = F.linear(h, sd[p + ".attn.c_qkv.weight"], sd[p + ".attn.c_qkv.bias"])
        q, k, v = qkv.view(b, n, heads, -1).split(attn_ch, dim=-1)
        s = 1 / math.sqrt(math.sqrt(attn_ch))
        w = torch.einsum("bthc,bshc->bhts", q * s, k * s).softmax(dim=-1)
        a = torch.einsum("bhts,bshc->bthc", w, v).reshape(b, n, -1)
        x = x + F.linear(a, sd[p + ".attn.c_proj.weight"], sd[p + ".attn.c_proj.bias"])
        h = _layer_norm(x, sd, p + ".ln_2")
        h = F.gelu(F.linear(h, sd[p + ".mlp.c_fc.weight"], sd[p + ".mlp.c_fc.bias"]))
        x = x + F.linear(h, sd[p + ".mlp.c_proj.weight"], sd[p + ".mlp.c_proj.bias"])
    x = _layer_norm(x, sd, "final_ln")
    proj = F.linear(x[:, -1], sd["transformer_proj.weight"], sd["transformer_proj.bias"])
    return proj, x.permute(0, 2, 1)


def _layout(o: Mapping[str, Any]) -> tuple[list[list[str]], list[str], list[list[str]]]:
    """Which layers each input / output block holds, following ``UNetModel.__init__``."""
    mult = [int(m) for m in o["channel_mult"].split(",")]
    attention = {o["image_size"] // int(r) for r in o["attention_resolutions"].split(",")}
    inputs: list[list[str]] = [["conv"]]
    ds = 1
    for level in range(len(mult)):
        for _ in range(o["num_res_blocks"]):
            inputs.append(["res"] + (["attn"] if ds in attention else []))
        if level != len(mult) - 1:
            inputs.append(["down"])
            ds *= 2
    outputs: list[list[str]] = []
    for level in reversed(range(len(mult))):
        for i in range(o["num_res_blocks"] + 1):
            layers = ["res"] + (["attn"] if ds in attention else [])
            if level and i == o["num_res_blocks"]:
                layers.append("up")
                ds //= 2
            outputs.append(layers)
    return inputs, ["res", "attn", "res"], outputs


def reference_forward(
    sd: Mapping[str, Tensor],
    options: Mapping[str, Any],
    x: Tensor,
    t: Tensor,
    tokens: Tensor,
    mask: Tensor,
    low_res: Tensor | None = None,
    slip: str | None = None,
) -> Tensor:
    """The release's ``Text2ImUNet`` / ``SuperResText2ImUNet`` forward, restated (float32)."""
    mc = options["num_channels"]
    if low_res is not None:
        up = F.interpolate(low_res, x.shape[-2:], mode="bilinear", align_corners=False)
        x = torch.cat([x, up], dim=1)
    half = mc // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    temb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    emb = F.linear(temb, sd["time_embed.0.weight"], sd["time_embed.0.bias"])
    emb = F.linear(F.silu(emb), sd["time_embed.2.weight"], sd["time_embed.2.bias"])
    proj, xf_out = _text(tokens, mask, sd, options, slip)
    emb = emb + proj
    head_ch = options["num_head_channels"]

    def run(block: list[str], h: Tensor, p: str) -> Tensor:
        for j, kind in enumerate(block):
            q = f"{p}.{j}"
            if kind == "conv":
                h = F.conv2d(h, sd[q + ".weight"], sd[q + ".bias"], padding=1)
            elif kind == "attn":
                h = _attention(h, xf_out, sd, q, head_ch, slip)
            else:
                h = _resblock(h, emb, sd, q, None if kind == "res" else kind)
        return h

    inputs, middle, outputs = _layout(options)
    h, skips = x, []
    for n, block in enumerate(inputs):
        h = run(block, h, f"input_blocks.{n}")
        skips.append(h)
    h = run(middle, h, "middle_block")
    for n, block in enumerate(outputs):
        h = run(block, torch.cat([h, skips.pop()], dim=1), f"output_blocks.{n}")
    h = F.silu(_gn(h, sd, "out.0"))
    return F.conv2d(h, sd["out.2.weight"], sd["out.2.bias"], padding=1)


@pytest.fixture
def glide_reference() -> Callable[..., Tensor]:
    """The restated release forward (see the module docstring)."""
    return reference_forward


def randomize(module: torch.nn.Module, seed: int = 0, std: float = 0.15) -> None:
    """Fill every parameter with seeded noise (the release zero-initialises output convs)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * std)


@pytest.fixture
def toy() -> SimpleNamespace:
    """Toy options, the matching model fields, the vocabulary size and ``randomize``."""
    return SimpleNamespace(
        options=dict(TOY_OPTIONS), config=toy_config, vocab=TOY_VOCAB, randomize=randomize
    )


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Toy models run fastest on one thread (and a busy machine punishes OpenMP spinning)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
