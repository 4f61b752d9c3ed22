"""CUDA checks, run by hand on a GPU machine (never in CI): fp32/fp16/bf16 inference and training.

Usage: python benchmarks/cuda_check.py OUT_DIR
Prints one line per check and exits non-zero when one fails.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import torch

from diffusers_hub import DiffusionPipeline, registry

results: list[tuple[str, bool, str]] = []


def check(name: str, ok: bool, detail: str) -> None:
    results.append((name, ok, detail))
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)


def _ddpm_train(
    launcher: list[str], steps: int, batch: int, out: Path, extra: tuple[str, ...] = ()
) -> list[str]:
    """The command line of a short ``diffusers_hub_ddpm.train`` run: digits at 16x16, on CUDA."""
    return [*launcher, "-m", "diffusers_hub_ddpm.train", "--data", "digits", "--resolution", "16",
            "--steps", str(steps), "--batch-size", str(batch), "--block-out-channels", "32,64",
            "--norm-num-groups", "8", "--device", "cuda", *extra, "--no-progress", "--out", str(out)]  # fmt: skip


def main(out: Path) -> int:
    assert torch.cuda.is_available(), "no CUDA device"
    print(torch.__version__, torch.cuda.get_device_name(), flush=True)
    demo = registry.demo_checkpoint("ddpm")

    # DDPM/DDIM demo pipelines: fp32 on CPU vs CUDA in every dtype, same CPU generator.
    for name in ("ddpm", "ddim"):
        pipe = registry.pipeline(name).from_pretrained(demo)
        pipe.set_progress_bar_config(disable=True)
        kwargs = {"batch_size": 4, "num_inference_steps": 50, "output_type": "np"}
        ref = pipe(generator=torch.Generator().manual_seed(0), **kwargs).images
        for dtype in (torch.float32, torch.float16, torch.bfloat16):
            pipe.to("cuda", dtype)
            start = time.perf_counter()
            got = pipe(generator=torch.Generator().manual_seed(0), **kwargs).images
            seconds = time.perf_counter() - start
            err = float(abs(got - ref).mean())
            bound = {torch.float32: 1e-3, torch.float16: 3e-2, torch.bfloat16: 6e-2}[dtype]
            check(
                f"{name} pipeline cuda {dtype}",
                err < bound,
                f"mean |cuda - cpu fp32| = {err:.2e} (< {bound}), {seconds:.2f} s",
            )
        pipe.to("cpu", torch.float32)

    # Latent diffusion: a small random text-to-image pipeline in fp16 on CUDA.
    ldm_cls = registry.pipeline("latent-diffusion")
    try:
        ldm = DiffusionPipeline.from_pretrained(registry.demo_checkpoint("latent-diffusion"))
        source = "demo weights"
    except Exception as exc:  # no demo shipped: skip with the reason
        check("latent-diffusion cuda", True, f"skipped ({exc})")
        ldm = None
        source = ""
    if ldm is not None:
        assert isinstance(ldm, ldm_cls)
        ldm.set_progress_bar_config(disable=True)
        for dtype in (torch.float32, torch.float16, torch.bfloat16):
            ldm.to("cuda", dtype)
            images = ldm(
                ["a red circle"],
                generator=torch.Generator().manual_seed(0),
                guidance_scale=6.0,
                eta=0.3,
                num_inference_steps=20,
                output_type="np",
            ).images
            finite = bool((images == images).all())
            check(
                f"latent-diffusion ({source}) cuda {dtype}",
                finite and images.std() > 0.01,
                f"shape {images.shape}, std {images.std():.3f}",
            )

    # BDDM: a small random DiffWave vocoder, CUDA in every dtype vs CPU fp32, same CPU generator.
    from diffusers_hub_bddm.diffwave import DiffWave
    from diffusers_hub_bddm.mel import MelSpectrogram
    from diffusers_hub_bddm.pipeline import BDDMPipeline
    from diffusers_hub_bddm.scheduler import LJSPEECH_12_STEPS, BDDMScheduler

    torch.manual_seed(0)
    vocoder = BDDMPipeline(
        diffwave=DiffWave(num_res_layers=4, res_channels=16, skip_channels=16),
        scheduler=BDDMScheduler(noise_schedule=list(LJSPEECH_12_STEPS)),
        mel=MelSpectrogram(),
    )
    vocoder.set_progress_bar_config(disable=True)
    tone = torch.sin(torch.arange(22050) * 2 * torch.pi * 220 / 22050)
    mel = vocoder.mel(tone)
    ref_audio = vocoder(mel, generator=torch.Generator().manual_seed(0)).audios
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        vocoder.to("cuda", dtype)
        got = vocoder(mel, generator=torch.Generator().manual_seed(0)).audios.float().cpu()
        err = float((got - ref_audio).abs().mean())
        bound = {torch.float32: 1e-4, torch.float16: 3e-2, torch.bfloat16: 6e-2}[dtype]
        check(f"bddm vocoder cuda {dtype}", err < bound, f"mean |cuda - cpu fp32| = {err:.2e}")

    # GLIDE: the demo base model and upsampler, guided, CUDA in every dtype vs CPU fp32.
    glide = DiffusionPipeline.from_pretrained(registry.demo_checkpoint("glide"))
    assert isinstance(glide, registry.pipeline("glide"))
    glide.set_progress_bar_config(disable=True)
    glide_kwargs = {"num_inference_steps": 25, "upsample_num_inference_steps": "fast27",
                    "guidance_scale": 3.0, "output_type": "np"}  # fmt: skip
    ref = glide(["a red circle"], generator=torch.Generator().manual_seed(0), **glide_kwargs).images
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        glide.to("cuda", dtype)
        got = glide(["a red circle"], generator=torch.Generator().manual_seed(0), **glide_kwargs)
        err = float(abs(got.images - ref).mean())
        bound = {torch.float32: 1e-3, torch.float16: 3e-2, torch.bfloat16: 6e-2}[dtype]
        check(
            f"glide base+upsampler cuda {dtype}", err < bound, f"mean |cuda - cpu fp32| = {err:.2e}"
        )
    glide.to("cpu", torch.float32)

    # Sharded sampling under torchrun with NCCL, fp16, on one GPU.
    proc = subprocess.run(
        ["torchrun", "--standalone", "--nproc-per-node=1", "-m", "diffusers_hub", "sample", "ddpm",
         "--num-samples", "16", "--batch-size", "8", "--steps", "50", "--dtype", "float16",
         "--device", "cuda", "--npz", "--no-progress", "--out-dir", str(out / "sample")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    check(
        "sample ddpm torchrun nccl fp16",
        proc.returncode == 0 and (out / "sample" / "samples.npz").is_file(),
        proc.stderr.strip().splitlines()[-1] if proc.returncode and proc.stderr else "ok",
    )

    # Training with mixed precision, then torchrun with NCCL on one GPU.
    for precision in ("no", "fp16", "bf16"):
        run_dir = out / f"train-{precision}"
        proc = subprocess.run(
            _ddpm_train(
                [sys.executable],
                30,
                32,
                run_dir,
                ("--mixed-precision", precision, "--checkpoint-every", "10"),
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        loaded = (run_dir / "model_index.json").is_file()
        check(
            f"train ddpm cuda mixed_precision={precision}",
            proc.returncode == 0 and loaded,
            proc.stderr.strip().splitlines()[-1] if proc.returncode else "pipeline folder written",
        )
    proc = subprocess.run(
        _ddpm_train(["torchrun", "--nproc_per_node=1"], 10, 16, out / "train-nccl"),
        capture_output=True,
        text=True,
        check=False,
    )
    check(
        "torchrun nccl 1 GPU",
        proc.returncode == 0,
        proc.stderr.strip().splitlines()[-1] if proc.returncode and proc.stderr else "ok",
    )
    failed = [name for name, ok, _ in results if not ok]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "cuda-check")))
