"""Convert the released GLIDE checkpoints (openai/glide-text2im) to a diffusers-format folder.

``base.pt`` and ``upsample.pt`` are plain ``torch.save(state_dict)`` files, read with
``torch.load(weights_only=True)``. Their keys are :class:`GLIDEUNetModel`'s keys, so conversion
is an accounting exercise: every source tensor is consumed exactly once (or named as dropped),
its shape is checked against the model built from the release's option dict, and anything left
over or missing is an error naming the key. The option dicts are those of the release's
``model_and_diffusion_defaults()`` / ``model_and_diffusion_defaults_upsampler()``; absent keys
take the release values, so toy-size checkpoints convert too.

Example:
    diffusers-hub convert glide --base base.pt --upsample upsample.pt --out glide

References:
    Nichol et al. 2021, arXiv:2112.10741; openai/glide-text2im ``model_creation.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from diffusers_hub.errors import ConfigError, WeightsError
from diffusers_hub.weights import read_torch_file
from diffusers_hub_glide.unet import GLIDEUNetModel, GLIDEUNetModelConfig

__all__ = [
    "BASE_OPTIONS",
    "UPSAMPLE_OPTIONS",
    "ConversionReport",
    "build_parser",
    "convert_state_dict",
    "load_release_checkpoint",
    "main",
    "options_to_config",
    "options_to_scheduler",
]

#: ``model_and_diffusion_defaults()`` of the release (the 64 px base model).
BASE_OPTIONS: dict[str, Any] = {
    "image_size": 64,
    "num_channels": 192,
    "num_res_blocks": 3,
    "channel_mult": "",
    "num_heads": 1,
    "num_head_channels": 64,
    "num_heads_upsample": -1,
    "attention_resolutions": "32,16,8",
    "dropout": 0.1,
    "text_ctx": 128,
    "xf_width": 512,
    "xf_layers": 16,
    "xf_heads": 8,
    "xf_final_ln": True,
    "xf_padding": True,
    "diffusion_steps": 1000,
    "noise_schedule": "squaredcos_cap_v2",
    "timestep_respacing": "",
    "use_scale_shift_norm": True,
    "resblock_updown": True,
    "use_fp16": True,
    "cache_text_emb": False,
    "inpaint": False,
    "super_res": False,
}
#: ``model_and_diffusion_defaults_upsampler()`` of the release (64 -> 256 px).
UPSAMPLE_OPTIONS: dict[str, Any] = {
    **BASE_OPTIONS,
    "image_size": 256,
    "num_res_blocks": 2,
    "noise_schedule": "linear",
    "super_res": True,
}
#: Options that choose how to run, not what the weights are: accepted and not needed here.
_RUNTIME_OPTIONS = frozenset({"timestep_respacing", "use_fp16", "cache_text_emb"})
_DEFAULT_MULT = {256: (1, 1, 2, 2, 4, 4), 128: (1, 1, 2, 3, 4), 64: (1, 2, 3, 4)}
#: Source keys that no released text-to-image model needs (the autoregressive text head of
#: ``xf_ar > 0`` training runs); dropped and reported when present.
_DROPPABLE_PREFIXES = ("unemb.",)


@dataclass
class ConversionReport:
    """What happened to the tensors of one source file.

    Attributes:
        source: the file.
        consumed: source keys loaded into the model (each exactly once).
        dropped: source keys deliberately not converted, with the reason.
        parameters: parameters of the converted model.
    """

    source: str
    consumed: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    parameters: int = 0

    def summary(self) -> str:
        """One line: counts of consumed and dropped tensors."""
        return (
            f"{self.source}: {len(self.consumed)} tensors consumed, {len(self.dropped)} dropped, "
            f"{self.parameters:,} parameters"
        )


def _head(items: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def options_to_config(
    options: Mapping[str, Any],
    state: Mapping[str, Tensor] | None = None,
    *,
    source: str = "options",
) -> GLIDEUNetModelConfig:
    """The :class:`GLIDEUNetModelConfig` of a release option dict (absent keys: release values).

    ``vocab_size`` is read from the checkpoint's ``token_embedding.weight`` when ``state`` is
    given (50,257 otherwise).

    Raises:
        ConfigError: an unknown option, an inpainting model, or values that do not form a model.
    """
    defaults = UPSAMPLE_OPTIONS if options.get("super_res") else BASE_OPTIONS
    unknown = sorted(set(options) - set(BASE_OPTIONS))
    if unknown:
        raise ConfigError(
            f"{source}: unknown GLIDE options {', '.join(unknown)}; expected keys of the release's "
            "model_and_diffusion_defaults()"
        )
    o = {**defaults, **options}
    if o["inpaint"]:
        raise ConfigError(f"{source}: inpaint=True models are not supported by this converter")
    try:
        size = int(o["image_size"])
        mult_spec = o["channel_mult"]
        if mult_spec in ("", None):
            if size not in _DEFAULT_MULT:
                raise ConfigError(
                    f"{source}: channel_mult is empty and image_size {size} has no release "
                    "default (64, 128, 256); give channel_mult such as '1,2,3,4'"
                )
            mult = _DEFAULT_MULT[size]
        elif isinstance(mult_spec, str):
            mult = tuple(int(m) for m in mult_spec.split(","))
        else:
            mult = tuple(int(m) for m in mult_spec)
        attention = o["attention_resolutions"]
        if isinstance(attention, str):
            attention = tuple(int(r) for r in attention.split(",") if r.strip())
        vocab = 50257
        if state is not None and "token_embedding.weight" in state:
            vocab = int(state["token_embedding.weight"].shape[0])
        fields = {
            "sample_size": size,
            "in_channels": 6 if o["super_res"] else 3,
            "out_channels": 6,
            "model_channels": int(o["num_channels"]),
            "channel_mult": mult,
            "num_res_blocks": int(o["num_res_blocks"]),
            "attention_resolutions": tuple(int(r) for r in attention),
            "num_heads": int(o["num_heads"]),
            "num_head_channels": int(o["num_head_channels"]),
            "num_heads_upsample": int(o["num_heads_upsample"]),
            "dropout": float(o["dropout"]),
            "use_scale_shift_norm": bool(o["use_scale_shift_norm"]),
            "resblock_updown": bool(o["resblock_updown"]),
            "text_ctx": int(o["text_ctx"]),
            "xf_width": int(o["xf_width"]),
            "xf_layers": int(o["xf_layers"]),
            "xf_heads": int(o["xf_heads"]),
            "xf_final_ln": bool(o["xf_final_ln"]),
            "xf_padding": bool(o["xf_padding"]),
            "vocab_size": vocab,
        }
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{source}: invalid GLIDE option value ({exc})") from exc
    return GLIDEUNetModelConfig.from_dict(fields, source=source)


def options_to_scheduler(options: Mapping[str, Any], *, upsample: bool) -> Any:
    """The scheduler of a release option dict: DDPM with learned range (base) or DDIM (upsampler).

    The release's ``linear`` schedule scales 1e-4 and 0.02 by ``1000 / diffusion_steps``.
    """
    from diffusers_hub_ddim.scheduler import DDIMScheduler
    from diffusers_hub_ddpm.scheduler import DDPMScheduler

    o = {**(UPSAMPLE_OPTIONS if upsample else BASE_OPTIONS), **options}
    steps = int(o["diffusion_steps"])
    schedule = o["noise_schedule"]
    if schedule not in ("linear", "squaredcos_cap_v2"):
        raise ConfigError(f"noise_schedule {schedule!r}: expected 'linear' or 'squaredcos_cap_v2'")
    scale = 1000.0 / steps
    common = {
        "num_train_timesteps": steps,
        "beta_schedule": schedule,
        "beta_start": 0.0001 * scale,
        "beta_end": 0.02 * scale,
        "clip_sample": True,
    }
    if upsample:
        return DDIMScheduler(**common)
    return DDPMScheduler(**common, variance_type="learned_range")


def load_release_checkpoint(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Read a release ``*.pt`` state dict with ``torch.load(weights_only=True)``.

    Raises:
        FileNotFoundError: no such file.
        WeightsError: not a readable torch file, or not a dict of tensors.
    """
    path = Path(path)
    what = "a GLIDE state dict (torch.save of model.state_dict(), e.g. base.pt)"
    state = read_torch_file(path, what)
    if not isinstance(state, Mapping):
        raise WeightsError(f"{path}: holds a {type(state).__name__}; expected {what}")
    bad = [str(k) for k, v in state.items() if not isinstance(v, Tensor)]
    if bad:
        raise WeightsError(f"{path}: entries {_head(bad)} are not tensors; expected {what}")
    return {str(k): v for k, v in state.items()}


def convert_state_dict(
    state: Mapping[str, Tensor], config: GLIDEUNetModelConfig, *, source: str
) -> tuple[GLIDEUNetModel, ConversionReport]:
    """Build the model of ``config`` and fill it from ``state``, accounting for every tensor.

    Raises:
        WeightsError: missing keys (a truncated file or options that do not fit), unexpected keys,
            or a shape that differs; the message names the keys and the options to check.
    """
    with torch.device("meta"):
        model = GLIDEUNetModel(config)
    expected = model.state_dict()
    report = ConversionReport(source=source)
    taken: dict[str, Tensor] = {}
    unexpected: list[str] = []
    for key, tensor in state.items():
        if key in expected:
            taken[key] = tensor
        elif key.startswith(_DROPPABLE_PREFIXES):
            report.dropped[key] = "autoregressive text head, unused for image generation"
        else:
            unexpected.append(key)
    missing = [k for k in expected if k not in taken]
    mismatched = [
        f"{k}: file {tuple(taken[k].shape)}, model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in taken and tuple(taken[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(
            f"{len(missing)} keys missing ({_head(missing)}): the file is truncated or was saved "
            "from a smaller model than the options describe"
        )
    if unexpected:
        problems.append(
            f"{len(unexpected)} unexpected keys ({_head(unexpected)}): not a GLIDE text-to-image "
            "checkpoint, or options describe a smaller model"
        )
    if mismatched:
        problems.append(
            f"{len(mismatched)} shapes differ ({_head(mismatched, 3)}): check num_channels, "
            "channel_mult, num_res_blocks, attention_resolutions and the xf_* options"
        )
    if problems:
        raise WeightsError(f"{source}: " + "; ".join(problems))
    model.load_state_dict({k: v.float() for k, v in taken.items()}, strict=True, assign=True)
    model.eval()
    report.consumed = list(taken)
    report.parameters = model.num_parameters()
    return model, report


def _read_options(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such options file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a JSON object of GLIDE options ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object of GLIDE options")
    return data


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="diffusers-hub convert glide",
        description="Convert openai/glide-text2im base.pt [and upsample.pt] to a GLIDEPipeline folder.",
    )
    p.add_argument("--base", required=True, type=Path, help="base model state dict (base.pt)")
    p.add_argument("--upsample", type=Path, default=None, help="upsampler state dict (upsample.pt)")
    p.add_argument("--options", type=Path, default=None, help="base options (JSON)")
    p.add_argument("--upsample-options", type=Path, default=None, help="upsampler options (JSON)")
    p.add_argument("--out", required=True, type=Path, help="pipeline folder to write")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``convert glide``: write the pipeline folder and print the key accounting."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)

    from diffusers_hub_glide.pipeline import GLIDEPipeline
    from diffusers_hub_glide.tokenizer import GLIDETokenizer

    base_options = _read_options(args.options)
    base_state = load_release_checkpoint(args.base)
    config = options_to_config(base_options, base_state, source=str(args.options or args.base))
    unet, report = convert_state_dict(base_state, config, source=str(args.base))
    reports = [report]
    up_unet = up_scheduler = None
    if args.upsample is not None:
        up_options = {"super_res": True, **_read_options(args.upsample_options)}
        up_state = load_release_checkpoint(args.upsample)
        up_config = options_to_config(
            up_options, up_state, source=str(args.upsample_options or args.upsample)
        )
        up_unet, up_report = convert_state_dict(up_state, up_config, source=str(args.upsample))
        up_scheduler = options_to_scheduler(up_options, upsample=True)
        reports.append(up_report)
    elif args.upsample_options is not None:
        raise SystemExit("--upsample-options needs --upsample")
    tokenizer = GLIDETokenizer.from_release()
    for name, model in (("base", unet), ("upsample", up_unet)):
        if model is not None and model.config.vocab_size != tokenizer.vocab_size:
            raise WeightsError(
                f"the {name} checkpoint's token_embedding has {model.config.vocab_size} rows, but "
                f"the release tokenizer has {tokenizer.vocab_size} tokens; only checkpoints "
                "trained with the GPT-2 vocabulary convert"
            )
    pipe = GLIDEPipeline(
        unet=unet,
        scheduler=options_to_scheduler(base_options, upsample=False),
        tokenizer=tokenizer,
        upsample_unet=up_unet,
        upsample_scheduler=up_scheduler,
    )
    pipe.save_pretrained(args.out)
    for item in reports:
        print(item.summary())
        for key, why in item.dropped.items():
            print(f"  dropped {key}: {why}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
