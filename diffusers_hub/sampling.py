"""Sampling at dataset scale: sharded over ``torchrun`` ranks, seeded per sample, resumable.

``diffusers-hub sample PIPELINE --num-samples N --out-dir DIR`` (and :func:`sample`) draw N
samples from any pipeline, in one process or in K processes under ``torchrun``:

- The indices 0 .. N-1 are cut into batches of ``batch_size`` consecutive indices, and batch k goes
  to rank ``k % world_size``. A batch's members never depend on the world size.
- Sample i draws its noise from its own ``torch.Generator`` seeded by :func:`sample_seed` ``(S, i)``
  (NumPy's ``SeedSequence``: independent streams for every seed and index), so no sample's noise
  depends on which other samples run, or where.
- Every file is written under a temporary name and renamed into place: a killed run leaves only
  whole files, and the same command restarted skips them (``sampling.json`` in the folder records
  the settings that decide a sample's values; a restart with other settings is refused).
- Images: ``{i:06d}.png`` each, ``grid.png`` (a contact sheet of the first 64) and, with
  ``npz=True``, ``samples.npz`` holding ``arr_0``, the (N, H, W, 3) uint8 array that the ADM
  evaluation suite (guided-diffusion ``evaluations/evaluator.py``) reads. Audio: ``{i:06d}.wav``.

Bit-identical outputs. The noise is per sample, but batched kernels are not batch-invariant:
MKL's small GEMMs round differently with the number of rows, their order and the thread count,
and oneDNN picks convolution kernels by shape. Measured on the DDPM demo UNet (2 CPU threads), a
sample computed alone differs from the same sample in a batch by up to 2e-6 (the batch-1 kernel
of the 3-channel output convolution), while batches of 2, 3 and 6 agree to the bit at 1 and 2
threads. So by default (batched) the output set is bit-identical across world sizes and restarts
when every process has the same batch size, device type and thread count (``OMP_NUM_THREADS``).
With ``batch_invariant=True`` every sample is computed on its own (a pipeline call per sample),
which makes its bits independent of the batch size, the world size and, as measured on CPU, the
thread count, at the cost of batching's throughput.

Conditioning: a pipeline whose ``__call__`` takes ``prompt`` gets ``prompts[i % len(prompts)]``
for sample i; one that takes ``mel_spectrogram`` gets the i-th (cyclically) ``.npy`` log-mel
array or ``.wav`` file of a folder, in name order; others take ``batch_size``.

References:
    Dhariwal and Nichol 2021, ADM evaluation layout (arXiv:2105.05233);
    O'Neill 2015 / NumPy ``SeedSequence`` for per-sample seeds.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from diffusers_hub import registry
from diffusers_hub.config import read_json, write_json_atomic
from diffusers_hub.errors import DiffusersHubError
from diffusers_hub.media import (
    atomic_path,
    read_png,
    read_wav,
    to_uint8_images,
    write_image,
    write_wav,
)
from diffusers_hub.training.distributed import (
    DistributedContext,
    barrier,
    broadcast_object,
    init_distributed,
    shutdown_distributed,
)

__all__ = [
    "MANIFEST",
    "SampleJob",
    "SamplingError",
    "rank_batches",
    "read_prompts",
    "sample",
    "sample_generator",
    "sample_seed",
]

MANIFEST = "sampling.json"
GRID_SAMPLES = 64
DType = Literal["float32", "float16", "bfloat16"]
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# Settings that do not change a sample's values (a restart may change them).
_FREE_SETTINGS = ("num_samples", "out_dir", "npz", "progress", "device")


class SamplingError(DiffusersHubError):
    """A sampling job could not run or finish; the message names the rank, samples or file."""


@dataclass(frozen=True)
class SampleJob:
    """What :func:`sample` draws and where it writes.

    Attributes:
        pipeline: a registry pipeline name (``ddpm``, ``latent-diffusion``, ...).
        num_samples: how many samples (indices 0 .. N-1).
        out_dir: the output folder (created; a restart reuses it).
        model: a local folder or Hub repo id; None for the plugin's embedded demo weights.
        batch_size: consecutive indices per batch (the unit of work of a rank).
        seed: S; sample i uses :func:`sample_generator` ``(S, i)``.
        npz: also write ``samples.npz`` (images only).
        prompts: text prompts, used cyclically (text-conditioned pipelines).
        mels: a folder of ``.npy`` log-mel arrays (n_mels, frames) or ``.wav`` files
            (vocoder pipelines).
        num_inference_steps, guidance_scale, eta: passed to the pipeline when set.
        device: ``cpu``, ``cuda`` or None (CUDA when available; rank r takes GPU ``LOCAL_RANK``).
        dtype: the models' dtype.
        batch_invariant: compute every sample alone, so that its bits do not depend on the batch.
        compile: wrap the denoiser with ``torch.compile`` (:meth:`DiffusionPipeline.compile`).
        progress: show a progress bar on rank 0.
    """

    pipeline: str
    num_samples: int
    out_dir: Path
    model: str | None = None
    batch_size: int = 8
    seed: int = 0
    npz: bool = False
    prompts: tuple[str, ...] | None = None
    mels: Path | None = None
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    eta: float | None = None
    device: str | None = None
    dtype: DType = "float32"
    batch_invariant: bool = False
    compile: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.num_samples < 1:
            raise SamplingError(f"--num-samples must be >= 1, got {self.num_samples}")
        if self.batch_size < 1:
            raise SamplingError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.dtype not in _DTYPES:
            raise SamplingError(f"--dtype must be one of {', '.join(_DTYPES)}, got {self.dtype!r}")
        if self.prompts is not None and not self.prompts:
            raise SamplingError("the prompts file holds no prompt (one prompt per line)")


def sample_seed(seed: int, index: int) -> int:
    """The 64-bit seed of sample ``index`` of a run seeded ``seed``: NumPy's ``SeedSequence``
    of ``(seed, index)``, whose streams are independent for all pairs (unlike ``seed + index``).

    Example:
        >>> sample_seed(0, 1) != sample_seed(1, 0)
        True
    """
    if seed < 0 or index < 0:
        raise SamplingError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    low, high = np.random.SeedSequence([seed, index]).generate_state(2, np.uint32)
    return int(low) | (int(high) << 32)


def sample_generator(seed: int, index: int) -> torch.Generator:
    """A CPU generator for sample ``index`` (CPU noise is the same whatever the model's device)."""
    return torch.Generator().manual_seed(sample_seed(seed, index))


def rank_batches(num_samples: int, batch_size: int, rank: int, world_size: int) -> list[range]:
    """The batches of indices that ``rank`` of ``world_size`` draws: batch k (indices
    ``k * batch_size`` onwards) goes to rank ``k % world_size``.

    Example:
        >>> rank_batches(7, 2, 1, 2)
        [range(2, 4), range(6, 7)]
    """
    starts = range(rank * batch_size, num_samples, world_size * batch_size)
    return [range(s, min(s + batch_size, num_samples)) for s in starts]


# -- files ------------------------------------------------------------------------------------------


def _sample_path(out_dir: Path, index: int, audio: bool) -> Path:
    return out_dir / f"{index:06d}.{'wav' if audio else 'png'}"


def _clear_stale_temporaries(out_dir: Path) -> None:
    """Remove the temporary files a killed run left (``.NAME.tmp-PID.EXT``)."""
    for stale in out_dir.glob(".*.tmp-*"):
        stale.unlink(missing_ok=True)


# -- conditioning and the pipeline call ---------------------------------------------------------


def _load_mels(job: SampleJob, pipe: Any) -> list[np.ndarray]:
    """The log-mel arrays (n_mels, frames) of ``job.mels``, in file-name order."""
    folder = job.mels
    assert folder is not None
    if not folder.is_dir():
        raise SamplingError(f"--mels {folder}: not a folder (expected .npy or .wav files)")
    files = sorted(p for p in folder.iterdir() if p.suffix in (".npy", ".wav"))
    if not files:
        raise SamplingError(f"--mels {folder}: no .npy or .wav files in the folder")
    mels = []
    for path in files:
        if path.suffix == ".npy":
            try:
                mel = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise SamplingError(f"{path}: not a readable .npy array ({exc})") from exc
        else:
            mel = _wav_to_mel(path, pipe)
        mel = np.asarray(mel, dtype=np.float32)
        mel = mel[0] if mel.ndim == 3 and mel.shape[0] == 1 else mel
        if mel.ndim != 2:
            raise SamplingError(
                f"{path}: a log-mel array must be (n_mels, frames), got {mel.shape}"
            )
        mels.append(mel)
    return mels


def _wav_to_mel(path: Path, pipe: Any) -> np.ndarray:
    if getattr(pipe, "mel", None) is None:
        raise SamplingError(f"{path}: the pipeline has no mel front end; pass .npy log-mels")
    rate, data = read_wav(path)
    if rate != pipe.sampling_rate:
        raise SamplingError(f"{path}: {rate} Hz, the vocoder expects {pipe.sampling_rate} Hz")
    return np.asarray(pipe.mel(torch.from_numpy(data)).numpy())


def _call_kind(pipe: Any, job: SampleJob) -> tuple[Literal["batch", "prompt", "mel"], set[str]]:
    """How ``pipe`` (an instance or the class) is driven, and its call's parameter names."""
    params = set(inspect.signature(pipe.__call__).parameters)
    name = pipe.__name__ if isinstance(pipe, type) else type(pipe).__name__
    if "prompt" in params:
        if job.prompts is None:
            raise SamplingError(f"{name} is text-conditioned: pass --prompts FILE")
        return "prompt", params
    if "mel_spectrogram" in params:
        if job.mels is None:
            raise SamplingError(f"{name} vocodes spectrograms: pass --mels DIR")
        return "mel", params
    if "batch_size" not in params:
        raise SamplingError(
            f"{name}.__call__ takes none of batch_size, prompt, "
            "mel_spectrogram; the sampler cannot drive it"
        )
    return "batch", params


def _make_caller(pipe: Any, job: SampleJob, mels: list[np.ndarray]) -> Callable[[range], Any]:
    """A function: indices -> the pipeline's output for them (images or audios)."""
    kind, params = _call_kind(pipe, job)
    options: dict[str, Any] = {}
    for key, value, flag in (
        ("num_inference_steps", job.num_inference_steps, "--steps"),
        ("guidance_scale", job.guidance_scale, "--guidance-scale"),
        ("eta", job.eta, "--eta"),
    ):
        if value is not None:
            if key not in params:
                raise SamplingError(f"{type(pipe).__name__} does not take {flag} ({key})")
            options[key] = value
    options["output_type"] = "np"

    def call(indices: range) -> Any:
        generators = [sample_generator(job.seed, i) for i in indices]
        if kind == "prompt":
            assert job.prompts is not None
            prompts = [job.prompts[i % len(job.prompts)] for i in indices]
            return pipe(prompt=prompts, generator=generators, **options)
        if kind == "mel":
            batch = np.stack([mels[i % len(mels)] for i in indices])
            return pipe(mel_spectrogram=torch.from_numpy(batch), generator=generators, **options)
        return pipe(batch_size=len(indices), generator=generators, **options)

    return call


def _groups(indices: range, job: SampleJob, mels: list[np.ndarray]) -> list[range]:
    """Split a batch into the pipeline calls it takes: one per sample when batch-invariant,
    and runs of equal-length spectrograms for a vocoder."""
    if job.batch_invariant:
        return [range(i, i + 1) for i in indices]
    if not mels:
        return [indices]
    groups, start = [], indices.start
    for i in indices[1:]:
        if mels[i % len(mels)].shape != mels[start % len(mels)].shape:
            groups.append(range(start, i))
            start = i
    return [*groups, range(start, indices.stop)]


# -- the run ------------------------------------------------------------------------------------


def _manifest(job: SampleJob, pipe: Any, conditions: str) -> dict[str, Any]:
    free = (*_FREE_SETTINGS, "prompts", "mels", *(("batch_size",) if job.batch_invariant else ()))
    settings = {k: v for k, v in asdict(job).items() if k not in free}
    return {
        **settings,
        "pipeline_class": type(pipe).__name__,
        "device_type": pipe.device.type,
        "conditions_sha256": conditions,
        "num_samples": job.num_samples,
    }


def _check_manifest(out_dir: Path, manifest: dict[str, Any]) -> str | None:
    """Write the manifest, or compare it with the one a previous run wrote; an error or None."""
    path = out_dir / MANIFEST
    if path.is_file():
        previous = read_json(path)
        for key, value in manifest.items():
            if key != "num_samples" and previous.get(key) != value:
                return (
                    f"{path}: this folder holds samples of another run ({key} was "
                    f"{previous.get(key)!r}, now {value!r}); use a new --out-dir, or the same "
                    "settings to resume"
                )
    write_json_atomic(path, manifest)
    return None


def _conditions_digest(job: SampleJob, mels: list[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for prompt in job.prompts or ():
        digest.update(prompt.encode() + b"\0")
    for mel in mels:
        digest.update(str(mel.shape).encode() + mel.tobytes())
    return digest.hexdigest()


def _progress(job: SampleJob, ctx: DistributedContext, total: int, done: int) -> Any:
    from tqdm.auto import tqdm

    # The bar counts rank 0's samples scaled by the world size: an estimate of the whole job
    # (collectives per batch would stall ranks whose shares differ).
    return tqdm(
        total=total,
        initial=done,
        unit="sample",
        unit_scale=ctx.world_size if ctx.world_size > 1 else False,
        desc=f"sampling ({ctx.world_size} rank{'s' if ctx.world_size > 1 else ''})",
        disable=not (job.progress and ctx.is_main),
        dynamic_ncols=True,
    )


def _load_pipeline(job: SampleJob, ctx: DistributedContext) -> Any:
    pipeline_cls = registry.pipeline(job.pipeline)
    _call_kind(pipeline_cls, job)  # missing --prompts / --mels: say so before loading weights
    folder = job.model if job.model is not None else registry.demo_checkpoint(job.pipeline)
    pipe = pipeline_cls.from_pretrained(folder)
    pipe.to(ctx.device, _DTYPES[job.dtype])
    pipe.set_progress_bar_config(disable=True)
    if job.compile:
        pipe.compile()
    return pipe


def _draw_share(
    job: SampleJob, ctx: DistributedContext, pipe: Any, mels: list[np.ndarray]
) -> tuple[bool, int]:
    """Draw and write this rank's missing samples; returns (audio?, samples written)."""
    call = _make_caller(pipe, job, mels)
    audio = hasattr(pipe, "sampling_rate")
    share = rank_batches(job.num_samples, job.batch_size, ctx.rank, ctx.world_size)
    todo = [b for b in share if any(not _sample_path(job.out_dir, i, audio).is_file() for i in b)]
    total = sum(len(b) for b in share)
    written = 0
    with _progress(job, ctx, total, total - sum(len(b) for b in todo)) as bar:
        for batch in todo:
            try:
                for group in _groups(batch, job, mels):
                    output = call(group)
                    if audio:
                        rate = int(getattr(output, "sampling_rate", pipe.sampling_rate))
                        for i, wave in zip(group, np.asarray(output.audios), strict=True):
                            write_wav(_sample_path(job.out_dir, i, True), wave, rate)
                    else:
                        images = to_uint8_images(output.images)
                        for i, image in zip(group, images, strict=True):
                            write_image(_sample_path(job.out_dir, i, False), image)
                    written += len(group)
            except Exception as exc:
                raise SamplingError(
                    f"rank {ctx.rank} of {ctx.world_size} failed on samples {batch.start}-"
                    f"{batch.stop - 1}: {type(exc).__name__}: {exc} (the samples written so "
                    "far are complete; rerun the same command to resume)"
                ) from exc
            bar.update(len(batch))
    return audio, written


def _assemble(job: SampleJob) -> dict[str, Any]:
    """On rank 0, once every rank is done: the contact sheet and ``samples.npz``."""
    paths = [_sample_path(job.out_dir, i, False) for i in range(job.num_samples)]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise SamplingError(
            f"{job.out_dir}: {len(missing)} samples are missing ({missing[0]}, ...) after every "
            "rank finished; with several machines --out-dir must be a folder they all share "
            "(or copy the files to one machine and rerun the command there to assemble)"
        )
    first = [read_png(p) for p in paths[:GRID_SAMPLES]]
    write_image(
        job.out_dir / "grid.png", np.stack([a if a.ndim == 3 else a[..., None] for a in first])
    )
    result: dict[str, Any] = {"grid": str(job.out_dir / "grid.png")}
    if job.npz:
        height, width = first[0].shape[:2]
        arr = np.empty((len(paths), height, width, 3), dtype=np.uint8)
        for i, path in enumerate(paths):
            arr[i] = read_png(path, "RGB")
        with atomic_path(job.out_dir / "samples.npz") as tmp, open(tmp, "wb") as handle:
            np.savez(handle, arr_0=arr)
        result["npz"] = str(job.out_dir / "samples.npz")
    return result


def sample(job: SampleJob) -> dict[str, Any]:
    """Run ``job`` in this process, as one rank of a ``torchrun`` job when launched by it.

    Returns:
        On every rank: ``written`` (samples this rank drew now), ``rank``, ``world_size``;
        on rank 0 also ``grid`` and ``npz`` (paths) for image pipelines.

    Raises:
        SamplingError: bad settings, a folder holding another run, or a rank's failure (the
            message names the rank and the samples; files already written stay whole).

    Example:
        >>> job = SampleJob("ddpm", num_samples=4, out_dir=Path("out"), batch_size=2)
        >>> sample(job)["written"]  # doctest: +SKIP
        4
    """
    ctx = init_distributed(job.device)
    try:
        with _deterministic_cuda():
            return _sample(job, ctx)
    except Exception as exc:
        if not ctx.distributed or str(exc).startswith("rank "):
            raise
        raise SamplingError(f"rank {ctx.rank} of {ctx.world_size}: {exc}") from exc
    finally:
        shutdown_distributed(ctx)


def _sample(job: SampleJob, ctx: DistributedContext) -> dict[str, Any]:
    pipe = _load_pipeline(job, ctx)
    mels = _load_mels(job, pipe) if job.mels is not None else []
    if job.npz and hasattr(pipe, "sampling_rate"):
        raise SamplingError("--npz writes the ADM image layout; audio pipelines write WAV files")
    error = None
    if ctx.is_main:
        job.out_dir.mkdir(parents=True, exist_ok=True)
        _clear_stale_temporaries(job.out_dir)
        error = _check_manifest(job.out_dir, _manifest(job, pipe, _conditions_digest(job, mels)))
    error = broadcast_object(error, ctx)
    if error is not None:
        raise SamplingError(error)
    audio, written = _draw_share(job, ctx, pipe, mels)
    result: dict[str, Any] = {"written": written, "rank": ctx.rank, "world_size": ctx.world_size}
    barrier(ctx)
    if ctx.is_main and not audio:
        result.update(_assemble(job))
    barrier(ctx)
    return result


@contextlib.contextmanager
def _deterministic_cuda() -> Iterator[None]:
    """cuDNN's deterministic kernels, no autotuning (which picks kernels by timing), restored."""
    backend = torch.backends.cudnn
    saved = (backend.deterministic, backend.benchmark)
    backend.deterministic, backend.benchmark = True, False
    try:
        yield
    finally:
        backend.deterministic, backend.benchmark = saved


def read_prompts(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The prompts of a text file, one per line (blank lines skipped)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SamplingError(f"--prompts {path}: cannot read it ({exc})") from exc
    return tuple(line.strip() for line in lines if line.strip())


def main(args: Any) -> int:
    """The ``diffusers-hub sample`` command (``args`` from its argparse parser)."""
    job = SampleJob(
        pipeline=args.pipeline,
        num_samples=args.num_samples,
        out_dir=Path(args.out_dir),
        model=args.model,
        batch_size=args.batch_size,
        seed=args.seed,
        npz=args.npz,
        prompts=read_prompts(args.prompts) if args.prompts else None,
        mels=Path(args.mels) if args.mels else None,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance_scale,
        eta=args.eta,
        device=args.device,
        dtype=args.dtype,
        batch_invariant=args.batch_invariant,
        compile=args.compile,
        progress=not args.no_progress,
    )
    result = sample(job)
    if result["rank"] == 0:
        files = "".join(f", {k} {result[k]}" for k in ("grid", "npz") if k in result)
        print(
            f"{job.num_samples} samples in {job.out_dir} (rank 0 of {result['world_size']} drew "
            f"{result['written']} now, the rest were there{files})"
        )
    return 0
