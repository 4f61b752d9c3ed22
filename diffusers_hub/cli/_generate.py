"""``diffusers-hub generate``, ``demo`` and ``sample``; the files they write are
:mod:`diffusers_hub.media`'s."""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path
from typing import Any

from diffusers_hub import registry
from diffusers_hub.errors import DiffusersHubError
from diffusers_hub.media import read_wav, to_uint8_images, write_image, write_wav


def _write_audio(audios: Any, out: Path, rate: int) -> list[Path]:
    """One WAV per item of a (B, channels, samples) or (B, samples) batch (``out``, or
    ``out-<i>`` for several)."""
    items = list(audios) if getattr(audios, "ndim", 2) > 1 else [audios]
    paths = []
    for i, item in enumerate(items):
        path = out if len(items) == 1 else out.with_name(f"{out.stem}-{i}{out.suffix}")
        write_wav(path, item, rate)
        paths.append(path)
    return paths


def _call_options(pipe: Any, args: argparse.Namespace, generator: Any) -> dict[str, Any]:
    """``pipe``'s keyword arguments from the options (``--mel``: a .npy file, ``--wav``: a WAV)."""
    import inspect

    import numpy as np

    params = inspect.signature(pipe.__call__).parameters
    open_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    options: dict[str, Any] = {"generator": generator}
    wanted = {
        "num_inference_steps": (args.steps, "--steps"),
        "prompt": (args.prompt, "--prompt"),
        "guidance_scale": (args.guidance_scale, "--guidance-scale"),
        "eta": (args.eta, "--eta"),
        "temperature": (args.temperature, "--temperature"),
        "upsample_strength": (args.upsample_strength, "--upsample-strength"),
    }
    batch = args.batch_size if args.batch_size != 1 else None
    # Text pipelines name the batch "images per prompt".
    batch_key = "num_images_per_prompt" if "num_images_per_prompt" in params else "batch_size"
    wanted[batch_key] = (batch, "--batch-size")
    if args.mel is not None:
        try:
            mel = np.load(args.mel, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DiffusersHubError(
                f"--mel {args.mel}: cannot be read as a .npy array ({exc}); save the "
                "spectrogram with numpy.save"
            ) from None
        wanted["mel_spectrogram"] = (mel, "--mel")
    if args.wav is not None:
        rate, samples = read_wav(args.wav)
        wanted["audio"] = (samples, "--wav")
        wanted["audio_sampling_rate"] = (rate, "--wav")
    for key, (value, flag) in wanted.items():
        if value is None:
            continue
        if key not in params and not open_kwargs:
            raise DiffusersHubError(f"{type(pipe).__name__} does not take {flag} ({key})")
        options[key] = value
    output_type = params.get("output_type")
    if output_type is None or output_type.default in ("pil", inspect.Parameter.empty):
        options["output_type"] = "pil"
    return options


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def _device(text: str) -> str:
    """argparse type: a torch device this machine has (``cpu``, ``cuda:0``, ``mps``)."""
    from diffusers_hub.checks import check_device

    try:
        check_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _cmd_generate(args: argparse.Namespace) -> int:
    pipeline_cls = registry.pipeline(args.pipeline)
    folder = args.model if args.model is not None else registry.demo_checkpoint(args.pipeline)
    if args.model is None and not Path(folder).is_dir():
        raise FileNotFoundError(f"the demo weights folder {folder} of {args.pipeline!r} is missing")
    import torch

    pipe = pipeline_cls.from_pretrained(folder)
    if args.device is not None:
        pipe = pipe.to(args.device)
    generator = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    output = pipe(**_call_options(pipe, args, generator))
    took = f"sampled in {time.perf_counter() - start:.1f} s"
    if getattr(output, "images", None) is not None:
        out = Path(args.out or f"{args.pipeline}.png")
        images = to_uint8_images(output.images)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_image(out, images)
        print(f"wrote {out} ({len(images)} image{'s' if len(images) != 1 else ''}, {took})")
        return 0
    if getattr(output, "audios", None) is not None:
        out = Path(args.out or f"{args.pipeline}.wav")
        out.parent.mkdir(parents=True, exist_ok=True)
        rate = int(getattr(output, "sampling_rate", 22050) or 22050)
        for path in _write_audio(output.audios, out, rate):
            print(f"wrote {path} ({rate} Hz, {took})")
        return 0
    raise DiffusersHubError(
        f"{type(pipe).__name__} returned {type(output).__name__}, which has neither .images nor .audios"
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    import torch

    from diffusers_hub import demo

    if args.threads < 0:
        raise DiffusersHubError(
            f"--threads must be 0 (torch's default) or more, got {args.threads}"
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rows = demo.sample_rows(
        samples=args.samples,
        ddpm_steps=args.ddpm_steps,
        ddim_steps=args.ddim_steps,
        ldm_steps=args.ldm_steps,
        seed=args.seed,
        device=args.device,
        report=lambda line: print(line, flush=True),
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    picture = demo.compose(rows)
    picture.save(out)
    sampling = sum(row.seconds for row in rows)
    print(
        f"wrote {out} ({picture.width}x{picture.height} px): {sampling:.1f} s of sampling, "
        f"{time.perf_counter() - start:.1f} s in all"
    )
    return 0


def add_parsers(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``generate``, ``demo`` and ``sample`` to the ``diffusers-hub`` subparsers ``sub``."""
    gen = sub.add_parser("generate", help="run a pipeline and save its output")
    gen.add_argument("pipeline", help="pipeline name (e.g. ddpm, ddim, latent-diffusion)")
    gen.add_argument(
        "--model", help="local folder or Hub repo id (default: the plugin's embedded demo weights)"
    )
    gen.add_argument("--prompt", help="text prompt (text-conditioned pipelines)")
    gen.add_argument("--steps", type=_positive_int, help="number of inference steps")
    gen.add_argument(
        "--guidance-scale", type=float, help="classifier-free guidance (text pipelines)"
    )
    gen.add_argument("--eta", type=float, help="DDIM eta (0 deterministic, 1 ancestral)")
    gen.add_argument(
        "--temperature",
        type=float,
        help="factor in [0, 1] on each reverse step's noise (samplers that take it: bddm)",
    )
    gen.add_argument(
        "--upsample-strength",
        type=float,
        help="start the upsampler from the noised resize at this strength (glide; 1: from noise)",
    )
    gen.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    gen.add_argument(
        "--batch-size", type=_positive_int, default=1, help="how many samples (default 1)"
    )
    gen.add_argument("--out", help="output file (default: PIPELINE.png, or PIPELINE.wav for audio)")
    source = gen.add_mutually_exclusive_group()
    source.add_argument("--mel", help="a .npy mel spectrogram to vocode (vocoder pipelines)")
    source.add_argument("--wav", help="a WAV file to analyse and resynthesise (vocoders)")
    gen.add_argument("--device", type=_device, help="torch device, e.g. cpu or cuda")
    gen.set_defaults(func=_cmd_generate)

    demo = sub.add_parser(
        "demo", help="sample DDPM, DDIM and latent diffusion from the demo weights into one PNG"
    )
    demo.add_argument("--out", default="demo.png", help="output PNG (default: demo.png)")
    demo.add_argument("--samples", type=int, default=8, help="images per row (default 8)")
    demo.add_argument("--ddpm-steps", type=int, default=250, help="DDPM steps (default 250)")
    demo.add_argument("--ddim-steps", type=int, default=50, help="DDIM steps (default 50)")
    demo.add_argument(
        "--ldm-steps", type=int, default=50, help="latent-diffusion DDIM steps (default 50)"
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--device", help="torch device, e.g. cpu or cuda")
    demo.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for torch (default 1: the demo models are tiny; 0: torch's default)",
    )
    demo.set_defaults(func=_cmd_demo)

    # sample: see diffusers_hub.sampling and docs/sampling.md
    smp = sub.add_parser(
        "sample", help="draw N samples into a folder (resumable; runs under torchrun too)"
    )
    smp.add_argument("pipeline", help="pipeline name (e.g. ddpm, ddim, latent-diffusion, bddm)")
    smp.add_argument("--num-samples", type=int, required=True, help="how many samples")
    smp.add_argument("--out-dir", required=True, help="output folder (a rerun resumes it)")
    smp.add_argument("--model", help="local folder or Hub repo id (default: the demo weights)")
    smp.add_argument("--batch-size", type=int, default=8, help="indices per batch (default 8)")
    smp.add_argument("--seed", type=int, default=0, help="S: sample i is seeded by (S, i)")
    smp.add_argument("--npz", action="store_true", help="also write samples.npz (ADM layout)")
    smp.add_argument("--prompts", help="text file, one prompt per line (text pipelines)")
    smp.add_argument("--mels", help="folder of .npy log-mels or .wav files (vocoders)")
    smp.add_argument("--steps", type=int, help="number of inference steps")
    smp.add_argument("--guidance-scale", type=float, help="classifier-free guidance")
    smp.add_argument("--eta", type=float, help="DDIM eta")
    smp.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    smp.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32")
    smp.add_argument(
        "--batch-invariant",
        action="store_true",
        help="compute each sample alone: bits independent of batch size (slower)",
    )
    smp.add_argument("--compile", action="store_true", help="torch.compile the denoiser")
    smp.add_argument("--no-progress", action="store_true", help="no progress bar")
    smp.set_defaults(func=lambda args: importlib.import_module("diffusers_hub.sampling").main(args))
