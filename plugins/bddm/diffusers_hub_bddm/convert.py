"""Convert BDDM's released checkpoints (tencent-ailab/bddm) to the diffusers-hub format.

BDDM saves its score network with ``torch.save({"config": Namespace, "model_state_dict": ...})``;
the DiffWave layers are weight-normalised (``weight_g``, ``weight_v``) and, once the schedule
network was trained (``DiffWave_GALR.pkl``), its ``schedule_net.*`` entries sit beside them; they
become the pipeline's ``schedule_net/`` (:class:`~diffusers_hub_bddm.schedule_net.BDDMScheduleNetwork`). A searched noise schedule is a
tuple ``(ts, sqrt_alpha_bar, betas, sigmas)`` saved with ``torch.save`` in a ``*.ns`` file. Both
are read with ``torch.load(weights_only=True)``: only tensors, plain containers and the
``argparse`` namespace of hyper-parameters are unpickled.

Example:
    diffusers-hub convert bddm --checkpoint egs/lj/DiffWave_GALR.pkl \\
        --noise-schedule egs/lj/noise_schedules/12steps_PESQ4.07_STOI0.978.ns --out bddm-lj

References:
    Lam, Wang, Su, Yu. BDDM, ICLR 2022, arXiv:2203.13508; Kong et al. DiffWave, arXiv:2009.09761.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from diffusers_hub.errors import WeightsError, head, key_problems
from diffusers_hub.weights import read_torch_file
from diffusers_hub_bddm.diffwave import DiffWave, DiffWaveConfig

__all__ = [
    "build_parser",
    "convert_bddm_state_dict",
    "convert_schedule_net_state_dict",
    "fold_weight_norm",
    "load_bddm_checkpoint",
    "load_noise_schedule",
    "main",
]

_BLOCK = "residual_layer.residual_blocks"
_SCHEDULE_NET = "schedule_net."
_GALR_BLOCK_INDEX = re.compile(r"^ratio_nn\.blocks\.(\d+)\.")
_POSITIONS = "global_rnn.pos_enc.pe"
_BLOCK_INDEX = re.compile(rf"^{re.escape(_BLOCK)}\.(\d+)\.")
_UPSAMPLE_INDEX = re.compile(rf"^{re.escape(_BLOCK)}\.\d+\.upsample_conv2d\.(\d+)\.")
#: Weight-norm parameters as newer torch (``nn.utils.parametrizations.weight_norm``) names them.
_PARAMETRIZED = {
    ".parametrizations.weight.original0": ".weight_g",
    ".parametrizations.weight.original1": ".weight_v",
}
_EXPECTED_FORMAT = (
    "expected the state dict of BDDM's DiffWave score network (tencent-ailab/bddm, "
    "bddm/models/diffwave.py): weight-normalised layers such as init_conv.0.conv.weight_g / "
    "weight_v / bias, residual_layer.fc_t1.weight, residual_layer.residual_blocks.{n}."
    "dilated_conv_layer.conv.weight_v, final_conv.2.conv.weight"
)


def fold_weight_norm(weight_g: Tensor, weight_v: Tensor) -> Tensor:
    """The plain weight of a weight-normalised layer: ``g * v / ||v||`` (norm over all dims but 0).

    Computed in float64 and returned in ``weight_v``'s dtype. This is torch's ``weight_norm`` with
    ``dim=0``; for a ``ConvTranspose2d`` dim 0 is the input-channel axis of its weight.

    Args:
        weight_g: (O,) or (O, 1, ..., 1) gains.
        weight_v: (O, ...) directions.

    Returns:
        (O, ...) weight.

    References:
        Salimans, Kingma. Weight Normalization, eq. 2. arXiv:1602.07868.
    """
    if weight_g.numel() != weight_v.shape[0]:
        raise ValueError(
            f"weight_g has {weight_g.numel()} entries but weight_v has {weight_v.shape[0]} "
            f"slices along dim 0 (shapes {tuple(weight_g.shape)} and {tuple(weight_v.shape)})"
        )
    v = weight_v.to(torch.float64)
    g = weight_g.to(torch.float64).reshape(-1, *([1] * (v.ndim - 1)))
    norm = v.reshape(v.shape[0], -1).norm(dim=1).reshape(g.shape)
    if bool((norm == 0).any()):
        raise ValueError("weight_v has an all-zero slice; its weight-norm direction is undefined")
    folded: Tensor = (g * v / norm).to(weight_v.dtype)
    return folded


def _module_table(num_layers: int, num_upsample: int) -> list[tuple[str, str, bool]]:
    """(original module, our module, weight-normalised) for every layer with weights."""
    table = [
        ("init_conv.0.conv", "init_conv", True),
        ("residual_layer.fc_t1", "step_embedding.linear_1", False),
        ("residual_layer.fc_t2", "step_embedding.linear_2", False),
    ]
    for n in range(num_layers):
        src, dst = f"{_BLOCK}.{n}", f"residual_layers.{n}"
        table += [
            (f"{src}.fc_t", f"{dst}.step_projection", False),
            (f"{src}.dilated_conv_layer.conv", f"{dst}.dilated_conv", True),
            *(
                (f"{src}.upsample_conv2d.{i}", f"{dst}.upsample.{i}", True)
                for i in range(num_upsample)
            ),
            (f"{src}.mel_conv.conv", f"{dst}.mel_conv", True),
            (f"{src}.res_conv", f"{dst}.res_conv", True),
            (f"{src}.skip_conv", f"{dst}.skip_conv", True),
        ]
    table += [
        ("final_conv.0.conv", "final_conv", True),
        ("final_conv.2.conv", "out_conv", False),
    ]
    return table


def _score_network_state(
    state: Mapping[str, Any], source: str
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """The score network's tensors (new-style weight-norm names renamed) and the schedule
    network's (``schedule_net.`` stripped)."""
    if "model_state_dict" in state:
        inner = state["model_state_dict"]
        if not isinstance(inner, Mapping):
            raise WeightsError(
                f"{source}: 'model_state_dict' is a {type(inner).__name__}, not a dict of tensors"
            )
        state = inner
    tensors: dict[str, Tensor] = {}
    schedule_net: dict[str, Tensor] = {}
    not_tensors: list[str] = []
    for key, value in state.items():
        if not isinstance(value, Tensor):
            not_tensors.append(f"{key} ({type(value).__name__})")
            continue
        if key.startswith(_SCHEDULE_NET):
            schedule_net[key[len(_SCHEDULE_NET) :]] = value
            continue
        for new_style, old_style in _PARAMETRIZED.items():
            if key.endswith(new_style):
                key = key[: -len(new_style)] + old_style
        tensors[key] = value
    if not_tensors:
        raise WeightsError(f"{source}: entries that are not tensors: {head(not_tensors)}")
    return tensors, schedule_net


def _infer_config(state: Mapping[str, Tensor], dilation_cycle: int, source: str) -> DiffWaveConfig:
    """The DiffWaveConfig of a (key-checked) original state dict, read off the tensor shapes."""

    def shape(key: str) -> tuple[int, ...]:
        return tuple(state[key].shape)

    blocks = sorted({int(m.group(1)) for k in state if (m := _BLOCK_INDEX.match(k))})
    ups = sorted({int(m.group(1)) for k in state if (m := _UPSAMPLE_INDEX.match(k))})
    res_channels, in_channels = shape("init_conv.0.conv.weight_v")[:2]
    embed_mid, embed_in = shape("residual_layer.fc_t1.weight")
    scales = []
    for i in ups:
        kernel = shape(f"{_BLOCK}.0.upsample_conv2d.{i}.weight_v")
        scales.append(kernel[-1] // 2)
    fields = {
        "in_channels": in_channels,
        "out_channels": shape("final_conv.2.conv.weight")[0],
        "res_channels": res_channels,
        "skip_channels": shape(f"{_BLOCK}.0.skip_conv.weight_v")[0],
        "num_res_layers": len(blocks),
        "dilation_cycle": dilation_cycle,
        "diffusion_step_embed_dim_in": embed_in,
        "diffusion_step_embed_dim_mid": embed_mid,
        "diffusion_step_embed_dim_out": shape("residual_layer.fc_t2.weight")[0],
        "n_mels": shape(f"{_BLOCK}.0.mel_conv.conv.weight_v")[1],
        "upsample_scales": scales,
    }
    return DiffWaveConfig.from_dict(fields, source=f"{source} (inferred config)")


def convert_bddm_state_dict(
    state: Mapping[str, Any],
    *,
    dilation_cycle: int = 10,
    source: str = "BDDM state dict",
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Turn an original DiffWave score-network state dict into :class:`DiffWave` weights.

    Every ``weight_g`` / ``weight_v`` pair is folded into a plain ``weight`` (see
    :func:`fold_weight_norm`), keys are renamed to this package's names, ``schedule_net.*``
    entries are left to :func:`convert_schedule_net_state_dict`, and the config is read off the tensor shapes.

    Args:
        state: the score network's ``state_dict()``, or a BDDM checkpoint dict holding it under
            ``model_state_dict``. New-style weight-norm names (``parametrizations.weight.
            original0/1``) are accepted as well.
        dilation_cycle: layer n dilates by ``2 ** (n % dilation_cycle)``; not stored in the
            weights (BDDM's vocoders use 10).
        source: what to call the state dict in error messages (a file name).

    Returns:
        (state dict for :class:`DiffWave`, the :class:`DiffWaveConfig` fields as a dict).

    Raises:
        WeightsError: (a ValueError) keys are missing or unexpected, or shapes do not fit one
            DiffWave; the message lists the offending names and the expected format.
        ConfigError: the inferred config is invalid.
    """
    tensors, _ = _score_network_state(state, source)
    blocks = sorted({int(m.group(1)) for k in tensors if (m := _BLOCK_INDEX.match(k))})
    ups = sorted({int(m.group(1)) for k in tensors if (m := _UPSAMPLE_INDEX.match(k))})
    if not blocks:
        raise WeightsError(
            f"{source}: no {_BLOCK}.{{n}}.* keys (found {head(sorted(tensors)) or 'none'}); "
            f"{_EXPECTED_FORMAT}"
        )
    table = _module_table(blocks[-1] + 1, ups[-1] + 1 if ups else 0)
    expected: list[str] = []
    for original, _, normed in table:
        names = ("weight_g", "weight_v", "bias") if normed else ("weight", "bias")
        expected += [f"{original}.{name}" for name in names]
    missing = [k for k in expected if k not in tensors]
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        parts = [f"{source}: not a DiffWave score network that this converter knows."]
        parts += key_problems(missing, unexpected)
        parts.append(f"{_EXPECTED_FORMAT[0].upper()}{_EXPECTED_FORMAT[1:]}.")
        raise WeightsError(" ".join(parts))

    config = _infer_config(tensors, dilation_cycle, source)
    converted: dict[str, Tensor] = {}
    for original, ours, normed in table:
        if normed:
            try:
                weight = fold_weight_norm(
                    tensors[f"{original}.weight_g"], tensors[f"{original}.weight_v"]
                )
            except ValueError as exc:
                raise WeightsError(f"{source}: {original}: {exc}") from None
        else:
            weight = tensors[f"{original}.weight"]
        converted[f"{ours}.weight"] = weight
        converted[f"{ours}.bias"] = tensors[f"{original}.bias"]

    with torch.device("meta"):
        model = DiffWave(config)
    mismatched = [
        f"{key} (converted {tuple(converted[key].shape)}, model {tuple(param.shape)})"
        for key, param in model.state_dict().items()
        if tuple(converted[key].shape) != tuple(param.shape)
    ]
    if mismatched:
        raise WeightsError(
            f"{source}: the tensor shapes do not fit one DiffWave (config read from the shapes: "
            f"{config.to_dict()}). Shape mismatches: {head(mismatched)}."
        )
    return converted, config.to_dict()


def convert_schedule_net_state_dict(
    state: Mapping[str, Any],
    *,
    attention_heads: int = 8,
    source: str = "BDDM state dict",
) -> tuple[dict[str, Tensor], dict[str, Any]] | None:
    """The release's GALR schedule network (``schedule_net.*``) as :class:`BDDMScheduleNetwork`.

    Every ``schedule_net.*`` entry is consumed: the parameters keep their names (less the
    prefix), each block's positional-encoding table ``global_rnn.pos_enc.pe`` (a buffer that
    the network computes itself) is checked against the sinusoids, and the config is read off
    the shapes.

    Args:
        state: a BDDM checkpoint dict (``model_state_dict``) or a bare state dict.
        attention_heads: heads of the global attention (not stored in the weights; the release
            uses 8).
        source: what to call the state dict in error messages.

    Returns:
        (state dict for :class:`BDDMScheduleNetwork`, its config fields), or None when the
        checkpoint holds no schedule network (``DiffWave.pkl``).

    Raises:
        WeightsError: keys missing or unexpected, shapes that do not fit, or a positional table
            that is not the sinusoidal one.
    """
    from diffusers_hub_bddm.schedule_net import BDDMScheduleNetwork, sinusoidal_positions

    _, tensors = _score_network_state(state, source)
    if not tensors:
        return None
    where = f"{source}: schedule_net"
    expected_format = (
        "expected the GALR schedule network of tencent-ailab/bddm (bddm/models/galr.py): "
        "schedule_net.ratio_nn.encoder.enc_conv.weight, schedule_net.ratio_nn.blocks.{n}."
        "local_rnn.rnn.weight_ih_l0, ..., schedule_net.ratio_nn.block_gate.1.weight"
    )
    first = "ratio_nn.blocks.0."
    needed = [
        "ratio_nn.encoder.enc_conv.weight",
        f"{first}local_rnn.rnn.weight_hh_l0",
        f"{first}ld_map.weight",
        f"{first}{_POSITIONS}",
    ]
    absent = [k for k in needed if k not in tensors]
    if absent:
        raise WeightsError(f"{where}: missing {head(absent)}; {expected_format}")
    enc = tensors["ratio_nn.encoder.enc_conv.weight"]
    ld_map = tensors[f"{first}ld_map.weight"]
    blocks = sorted({int(m.group(1)) for k in tensors if (m := _GALR_BLOCK_INDEX.match(k))})
    fields: dict[str, Any] = {
        "blocks": blocks[-1] + 1,
        "input_dim": int(enc.shape[0]),
        "hidden_dim": int(tensors[f"{first}local_rnn.rnn.weight_hh_l0"].shape[1]),
        "window_length": int(enc.shape[-1]),
        "segment_size": int(ld_map.shape[1]),
        "low_dim": int(ld_map.shape[0]),
        "attention_heads": attention_heads,
        "max_segments": int(tensors[f"{first}{_POSITIONS}"].shape[0]),
    }
    config = BDDMScheduleNetwork.config_class.model_validate(fields)
    with torch.device("meta"):
        model = BDDMScheduleNetwork(config)
    wanted = model.state_dict()
    tables = {f"ratio_nn.blocks.{n}.{_POSITIONS}" for n in range(config.blocks)}
    missing = sorted((set(wanted) | tables) - set(tensors))
    unexpected = sorted(set(tensors) - set(wanted) - tables)
    mismatched = [
        f"{key} (checkpoint {tuple(tensors[key].shape)}, model {tuple(param.shape)})"
        for key, param in wanted.items()
        if key in tensors and tuple(tensors[key].shape) != tuple(param.shape)
    ]
    if missing or unexpected or mismatched:
        parts = [f"{where} does not fit one BDDMScheduleNetwork ({config.to_dict()})."]
        parts += key_problems(missing, unexpected, mismatched)
        parts.append(f"{expected_format[0].upper()}{expected_format[1:]}.")
        raise WeightsError(" ".join(parts))
    reference = sinusoidal_positions(config.max_segments, config.input_dim)
    for key in sorted(tables):
        table = tensors[key].float()
        if table.shape != reference.shape or not torch.allclose(table, reference, atol=1e-4):
            raise WeightsError(
                f"{where}: {key} is not the sinusoidal positional table of shape "
                f"{tuple(reference.shape)} that the network computes"
            )
    return {k: tensors[k] for k in wanted}, config.to_dict()


# -- files -----------------------------------------------------------------------------------------


def _torch_load(path: str | os.PathLike[str], what: str) -> Any:
    # BDDM stores its hyper-parameters as an argparse.Namespace: a plain attribute bag.
    return read_torch_file(path, what, allowed=[argparse.Namespace])


def _read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the checkpoint dict, its hyper-parameters as a dict; empty when absent)."""
    what = "a BDDM score-network checkpoint (a dict with 'model_state_dict')"
    package = _torch_load(path, what)
    if not isinstance(package, dict):
        raise WeightsError(f"{path}: holds a {type(package).__name__}; expected {what}")
    hyper = package.get("config")
    if isinstance(hyper, argparse.Namespace):
        hyper = vars(hyper)
    hyper = dict(hyper) if isinstance(hyper, Mapping) else {}
    score_net = hyper.get("score_net")
    if score_net is not None and score_net != "DiffWave":
        raise WeightsError(
            f"{path}: its score network is {score_net!r}; only 'DiffWave' checkpoints convert"
        )
    return package, hyper


def load_bddm_checkpoint(
    path: str | os.PathLike[str], *, dilation_cycle: int | None = None
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read and convert a BDDM score-network checkpoint (``*.pkl``).

    Args:
        path: a dict saved with ``torch.save`` holding ``model_state_dict`` (a bare state dict
            works too).
        dilation_cycle: overrides the checkpoint's ``config.dilation_cycle`` (default 10 when the
            checkpoint carries no config).

    Returns:
        (state dict for :class:`DiffWave`, the config fields), as
        :func:`convert_bddm_state_dict`.

    Raises:
        FileNotFoundError: no such file.
        WeightsError: the file cannot be unpickled with ``weights_only=True``, is not a DiffWave
            checkpoint, or its keys or shapes are wrong.
    """
    package, hyper = _read_checkpoint(path)
    if dilation_cycle is None:
        dilation_cycle = int(hyper.get("dilation_cycle", 10))
    return convert_bddm_state_dict(package, dilation_cycle=dilation_cycle, source=str(path))


def load_noise_schedule(path: str | os.PathLike[str]) -> dict[str, list[float]]:
    """Read a searched noise schedule (``*.ns``) of BDDM.

    The file holds ``(ts, sqrt_alpha_bar, betas, sigmas)``: four 1-D float tensors of N entries,
    from the clean end up (the continuous training steps, $\\hat\\alpha_n$, $b_n$, $\\sigma_n$).

    Returns:
        ``{"timesteps", "sqrt_alpha_bar", "betas", "sigmas"}`` as float lists; the betas alone
        define the schedule (``BDDMScheduler(noise_schedule=...)``), the rest are for checking.

    Raises:
        FileNotFoundError: no such file.
        WeightsError: the file cannot be unpickled with ``weights_only=True`` or does not hold a
            valid schedule (the message names the file and the problem).
    """
    what = "a BDDM noise schedule (a tuple of 4 tensors: ts, sqrt_alpha_bar, betas, sigmas)"
    obj = _torch_load(path, what)
    if not isinstance(obj, list | tuple) or len(obj) != 4:
        size = f" of {len(obj)}" if isinstance(obj, list | tuple) else ""
        raise WeightsError(f"{path}: holds a {type(obj).__name__}{size}; expected {what}")
    names = ("timesteps", "sqrt_alpha_bar", "betas", "sigmas")
    for name, value in zip(names, obj, strict=True):
        if not isinstance(value, Tensor) or value.ndim != 1 or not value.is_floating_point():
            found = (
                f"a {value.dtype} tensor of shape {tuple(value.shape)}"
                if isinstance(value, Tensor)
                else f"a {type(value).__name__}"
            )
            raise WeightsError(f"{path}: {name} is {found}; expected a 1-D float tensor")
    lengths = {name: int(v.shape[0]) for name, v in zip(names, obj, strict=True)}
    if len(set(lengths.values())) != 1 or lengths["betas"] == 0:
        raise WeightsError(f"{path}: the four tensors need one, nonzero length; got {lengths}")
    schedule = {
        name: [float(x) for x in v.double().tolist()] for name, v in zip(names, obj, strict=True)
    }
    bad = [b for b in schedule["betas"] if not 0.0 < b < 1.0]
    if bad:
        raise WeightsError(f"{path}: betas must lie in (0, 1); got {bad[:4]}")
    if not all(math.isfinite(x) for values in schedule.values() for x in values):
        raise WeightsError(f"{path}: the schedule holds non-finite values")
    return schedule


# -- command line ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``convert bddm`` argument parser."""
    p = argparse.ArgumentParser(
        prog="diffusers-hub convert bddm",
        description="Convert a BDDM (tencent-ailab/bddm) DiffWave checkpoint, and optionally a "
        "searched noise schedule, into a BDDMPipeline folder.",
    )
    p.add_argument("--checkpoint", required=True, type=Path, help="score network (*.pkl)")
    p.add_argument("--noise-schedule", type=Path, default=None, help="searched schedule (*.ns)")
    p.add_argument("--out", required=True, type=Path, help="pipeline folder to write")
    p.add_argument(
        "--dilation-cycle",
        type=int,
        default=None,
        help="override the checkpoint's dilation_cycle (default: its config, else 10)",
    )
    p.add_argument("--dtype", choices=("float32", "float16"), default="float32")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``convert bddm``: write ``diffwave/``, ``scheduler/``, ``mel/`` (and ``schedule_net/``
    when the checkpoint holds one) into ``--out``."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)

    from diffusers_hub_bddm.mel import MelSpectrogram
    from diffusers_hub_bddm.pipeline import BDDMPipeline
    from diffusers_hub_bddm.scheduler import BDDMScheduler

    package, hyper = _read_checkpoint(args.checkpoint)
    cycle = args.dilation_cycle
    if cycle is None:
        cycle = int(hyper.get("dilation_cycle", 10))
    state, fields = convert_bddm_state_dict(
        package, dilation_cycle=cycle, source=str(args.checkpoint)
    )
    model = DiffWave(fields)
    hop = hyper.get("hop_len")
    if hop is not None and int(hop) != model.hop_length:
        raise WeightsError(
            f"{args.checkpoint}: its config says hop_len {hop}, but the mel upsampler's strides "
            f"{fields['upsample_scales']} give {model.hop_length}"
        )
    dtype = getattr(torch, args.dtype)
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True)
    model.to(dtype).eval()

    betas = None
    if args.noise_schedule is not None:
        betas = load_noise_schedule(args.noise_schedule)["betas"]
    scheduler = BDDMScheduler(
        num_train_timesteps=int(hyper.get("T", 200)),
        beta_start=float(hyper.get("beta_0", 1e-4)),
        beta_end=float(hyper.get("beta_T", 0.02)),
        noise_schedule=betas,
    )
    # the front end the vocoder was trained on, from the checkpoint's config where it says
    mel_keys = {
        "sampling_rate": "sampling_rate",
        "fil_len": "n_fft",
        "hop_len": "hop_length",
        "win_len": "win_length",
        "mel_fmin": "f_min",
        "mel_fmax": "f_max",
    }
    mel_fields = {ours: hyper[theirs] for theirs, ours in mel_keys.items() if theirs in hyper}
    mel = MelSpectrogram(**mel_fields)
    schedule_net = None
    galr = convert_schedule_net_state_dict(package, source=str(args.checkpoint))
    if galr is not None:
        from diffusers_hub_bddm.schedule_net import BDDMScheduleNetwork

        schedule_net = BDDMScheduleNetwork(galr[1])
        schedule_net.load_state_dict({k: v.to(dtype) for k, v in galr[0].items()}, strict=True)
        schedule_net.to(dtype).eval()
    pipe = BDDMPipeline(diffwave=model, scheduler=scheduler, mel=mel, schedule_net=schedule_net)
    pipe.save_pretrained(args.out)
    steps = f"{len(betas)}-step searched schedule" if betas else "no searched schedule"
    galr_note = (
        f"; schedule network with {schedule_net.num_parameters():,} parameters"
        if schedule_net is not None
        else ""
    )
    print(
        f"wrote {args.out} (DiffWave with {model.num_parameters():,} parameters, "
        f"{fields['num_res_layers']} layers; {steps}{galr_note})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
