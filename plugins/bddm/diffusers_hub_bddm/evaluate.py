"""Measuring a vocoder on held-out notes: pitch reproduced and log-mel distance.

A vocoder is given the log-mel spectrogram of a clip it never saw and judged on what it makes of
it: :func:`~diffusers_hub_bddm.data.pitch_accuracy` (does the strongest spectral peak of the
output sit within 50 cents of the note's fundamental) and :func:`log_mel_l1` (the mean absolute
difference between the log-mel spectrogram of the output and the conditioning one, in nats; 0 is
perfect, noise scores about 7). :func:`evaluate_vocoder` runs both for one sampling schedule, and
the noise-schedule search (:meth:`~diffusers_hub_bddm.scheduler.BDDMScheduler.search`) uses the
same two numbers to pick a schedule.

References:
    Lam et al. 2022, BDDM, arXiv:2203.13508 (section 6: schedules are scored on held-out audio).
    Kong et al. 2021, DiffWave, arXiv:2009.09761.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from diffusers_hub_bddm.data import ToneDataset, pitch_accuracy
from diffusers_hub_bddm.mel import MelSpectrogram

if TYPE_CHECKING:
    from diffusers_hub_bddm.pipeline import BDDMPipeline

__all__ = ["VocoderScores", "evaluate_vocoder", "log_mel_l1", "vocode_and_score"]


@dataclass(frozen=True)
class VocoderScores:
    """What :func:`evaluate_vocoder` measured.

    Attributes:
        pitch_accuracy: fraction of clips whose pitch is within 50 cents of the note's f0 (over
            all repeats).
        log_mel_l1: mean absolute log-mel difference to the conditioning spectrogram (nats).
        num_steps: sampling steps of the schedule.
        num_clips: clips measured (per repeat).
        pitch_accuracy_per_repeat: the pitch accuracy of each repeat (each clip vocoded again
            with other sampling noise): how much of the figure is the noise (one seed of a small
            vocoder can be 10-20 points off the mean).
    """

    pitch_accuracy: float
    log_mel_l1: float
    num_steps: int
    num_clips: int
    pitch_accuracy_per_repeat: tuple[float, ...]

    @property
    def repeats(self) -> int:
        """Times each clip was vocoded."""
        return len(self.pitch_accuracy_per_repeat)

    def as_dict(self) -> dict[str, float | int]:
        """The scores as a JSON-ready dict."""
        return {
            "pitch_accuracy": self.pitch_accuracy,
            "log_mel_l1": self.log_mel_l1,
            "num_steps": self.num_steps,
            "num_clips": self.num_clips,
            "repeats": self.repeats,
            "pitch_accuracy_per_repeat": list(self.pitch_accuracy_per_repeat),
        }


def log_mel_l1(audio: Tensor, reference_mel: Tensor, mel: MelSpectrogram) -> Tensor:
    """Per-clip mean absolute difference between the log-mel of ``audio`` and a reference.

    Args:
        audio: (B, 1, L) or (B, L) waveforms.
        reference_mel: (B, n_mels, frames) log-mel spectrograms (what conditioned the vocoder).
        mel: the front end that computes the log-mel of ``audio``.

    Returns:
        (B,) float32 distances in nats, over the frames both spectrograms have.

    References:
        Lam et al. 2022, BDDM, arXiv:2203.13508; Kong et al. 2021, arXiv:2009.09761.
    """
    clips = audio[:, 0] if audio.ndim == 3 else audio
    if clips.ndim != 2:
        raise ValueError(f"audio must be (B, 1, L) or (B, L); got shape {tuple(audio.shape)}")
    if reference_mel.ndim != 3 or reference_mel.shape[0] != clips.shape[0]:
        raise ValueError(
            f"reference_mel must be ({clips.shape[0]}, n_mels, frames); got "
            f"{tuple(reference_mel.shape)}"
        )
    with torch.no_grad():
        generated = mel(clips.float().cpu())
    frames = min(generated.shape[-1], reference_mel.shape[-1])
    diff = generated[..., :frames] - reference_mel[..., :frames].float().cpu()
    return diff.abs().mean(dim=(1, 2))


def vocode_and_score(
    pipe: BDDMPipeline,
    mels: Tensor,
    length: int,
    f0s: Sequence[float] | None,
    mel: MelSpectrogram,
    generator: torch.Generator,
    *,
    num_inference_steps: int | None = None,
    noise_schedule: Sequence[float] | None = None,
    temperature: float | None = None,
) -> tuple[float | None, Tensor]:
    """Vocode one batch of log-mels and score it.

    Args:
        pipe: the vocoder.
        mels: (B, n_mels, frames) conditioning log-mels.
        length: samples of the reference clips (the output is cropped to it).
        f0s: the clips' fundamentals, or None to skip the pitch score.
        mel: the front end that computes the log-mel of the output.
        generator: the sampling noise.
        num_inference_steps: respace the training schedule to this many steps.
        noise_schedule: a searched schedule's betas (clean end first); with neither, the
            pipeline's own schedule runs.
        temperature: factor on each step's noise (default: the scheduler's).

    Returns:
        (fraction of clips with the right pitch, or None without ``f0s``; (B,) log-mel L1).
    """
    out = pipe(
        mels,
        generator=generator,
        num_inference_steps=num_inference_steps,
        noise_schedule=noise_schedule,
        temperature=temperature,
    )
    audio = torch.as_tensor(out.audios)[..., :length]  # type: ignore[union-attr]
    pitch = None if f0s is None else pitch_accuracy(audio, list(f0s), mel.sampling_rate)
    return pitch, log_mel_l1(audio, mels, mel)


def evaluate_vocoder(
    pipe: BDDMPipeline,
    dataset: ToneDataset,
    indices: Sequence[int] | None = None,
    *,
    num_inference_steps: int | None = None,
    noise_schedule: Sequence[float] | None = None,
    temperature: float | None = None,
    seed: int = 0,
    batch_size: int = 16,
    repeats: int = 1,
) -> VocoderScores:
    """Vocode held-out notes from their log-mels and score the result.

    Args:
        pipe: the vocoder.
        dataset: held-out notes (another ``seed`` than the training notes).
        indices: which items (default: all).
        num_inference_steps: respace the training schedule to this many steps (see
            :class:`~diffusers_hub_bddm.pipeline.BDDMPipeline`); with neither this nor
            ``noise_schedule`` the pipeline's searched schedule runs.
        noise_schedule: a searched schedule's betas (clean end first).
        temperature: factor on each step's noise (default: the scheduler's ``temperature``).
        seed: seed of the sampling noise (batch k of repeat r uses ``seed + r * batches + k``).
        batch_size: clips vocoded at once.
        repeats: vocode every clip this many times, each with its own noise, and average.

    Returns:
        The :class:`VocoderScores`.

    References:
        Lam et al. 2022, BDDM, arXiv:2203.13508.
    """
    picked = list(range(len(dataset))) if indices is None else list(indices)
    if not picked:
        raise ValueError("no clips to evaluate")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1; got {batch_size}")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1; got {repeats}")
    mel = pipe.mel if pipe.mel is not None else dataset.mel
    chunks = [picked[start : start + batch_size] for start in range(0, len(picked), batch_size)]
    # (length, mels, f0s) of each batch, made once for all repeats
    batches = []
    for chunk in chunks:
        items = [dataset[i] for i in chunk]
        mels = torch.stack([m for _, m in items])
        batches.append((items[0][0].shape[-1], mels, [dataset.f0(i) for i in chunk]))
    per_repeat = []
    distance = 0.0
    steps = 0
    for r in range(repeats):
        hits = 0.0
        for k, (length, mels, f0s) in enumerate(batches):
            pitch, l1 = vocode_and_score(
                pipe,
                mels,
                length,
                f0s,
                mel,
                torch.Generator().manual_seed(seed + r * len(batches) + k),
                num_inference_steps=num_inference_steps,
                noise_schedule=noise_schedule,
                temperature=temperature,
            )
            steps = len(pipe.scheduler.timesteps)
            hits += (pitch or 0.0) * len(f0s)
            distance += float(l1.sum())
        per_repeat.append(hits / len(picked))
    return VocoderScores(
        pitch_accuracy=sum(per_repeat) / repeats,
        log_mel_l1=distance / (len(picked) * repeats),
        num_steps=steps,
        num_clips=len(picked),
        pitch_accuracy_per_repeat=tuple(per_repeat),
    )
