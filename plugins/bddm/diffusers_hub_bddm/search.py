"""BDDM's noise scheduling: a short schedule for a score network, found with its schedule network.

Given a trained score network $\\epsilon_\\theta$ and schedule network $\\sigma_\\phi$, a schedule
is grown from the noisy end: start at a pair $(\\hat\\alpha_N, \\hat\\beta_N)$, take one DDPM
reverse step of the score network on noise, let the schedule network propose the next beta from
the result, $\\hat\\beta_{n-1} = \\min\\{\\hat\\beta_n, 1 - \\hat\\alpha_{n-1}^2\\}\\,
\\sigma_\\phi(\\hat x_{n-1})$ with $\\hat\\alpha_{n-1} = \\hat\\alpha_n / \\sqrt{1 -
\\hat\\beta_n}$, and repeat until the beta falls under the floor (the training schedule's first
beta), the noise scale passes 1, or ``max_steps`` betas are collected. Each start on a grid of
$(\\hat\\alpha_N, \\hat\\beta_N)$ gives one candidate; every candidate samples the reference
spectrograms and is scored on the result (pitch reproduced when the fundamentals are known, then
log-mel L1 against the reference); the best start of each length is then perturbed by up to
+-5% ``attempts`` times, and the best schedule overall is kept.

Example:
    diffusers-hub bddm search --model bddm-notes --steps 12 --out bddm-notes/scheduler

References:
    Lam, Wang, Su, Yu. BDDM, ICLR 2022, arXiv:2203.13508 (Algorithm 2, section 3.4, appendix
    on the grid search of the initial values).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from diffusers_hub.config import write_json_atomic
from diffusers_hub_bddm.scheduler import (
    BDDMScheduler,
    bddm_step,
    check_temperature,
    noise_scale_to_timestep,
)

if TYPE_CHECKING:
    from diffusers_hub_bddm.mel import MelSpectrogram

__all__ = ["ScheduleCandidate", "ScheduleSearchResult", "propose_schedule", "search_noise_schedule"]

#: Name of the search record written beside the scheduler config.
SEARCH_LOG = "bddm_search.json"


@dataclass(frozen=True)
class ScheduleCandidate:
    """One proposed schedule and its scores.

    Attributes:
        alpha_start: $\\hat\\alpha_N$ the proposal started from.
        beta_start: $\\hat\\beta_N$ the proposal started from.
        betas: the schedule's betas, clean end first.
        pitch_accuracy: fraction of reference clips with the right pitch (None: no f0s given).
        log_mel_l1: mean log-mel distance to the reference spectrograms.
    """

    alpha_start: float
    beta_start: float
    betas: tuple[float, ...]
    pitch_accuracy: float | None
    log_mel_l1: float

    @property
    def num_steps(self) -> int:
        """Steps of the schedule."""
        return len(self.betas)

    def sort_key(self) -> tuple[float, float]:
        """Smaller is better: more pitch hits first, then a smaller log-mel distance."""
        return (-(self.pitch_accuracy or 0.0), self.log_mel_l1)


@dataclass
class ScheduleSearchResult:
    """What :func:`search_noise_schedule` found.

    Attributes:
        best: the best candidate (its ``betas`` are the searched schedule).
        best_by_steps: the best candidate of each schedule length.
        candidates: every candidate tried, in order.
        base_config: the training scheduler's config fields.
    """

    best: ScheduleCandidate
    best_by_steps: dict[int, ScheduleCandidate]
    candidates: list[ScheduleCandidate] = field(default_factory=list)
    base_config: dict[str, Any] = field(default_factory=dict)

    @property
    def betas(self) -> list[float]:
        """The searched schedule's betas, clean end first."""
        return list(self.best.betas)

    def scheduler(self, num_steps: int | None = None) -> BDDMScheduler:
        """A :class:`BDDMScheduler` that samples with the best (or the best ``num_steps``-step)
        schedule."""
        chosen = self.best if num_steps is None else self.best_by_steps.get(num_steps)
        if chosen is None:
            raise ValueError(
                f"no {num_steps}-step schedule was found; lengths found: "
                f"{sorted(self.best_by_steps)}"
            )
        fields = {**self.base_config, "noise_schedule": list(chosen.betas)}
        return BDDMScheduler(**fields)

    def save(self, directory: str | Path, num_steps: int | None = None) -> Path:
        """Write a scheduler folder (``scheduler_config.json`` and ``bddm_search.json``).

        ``BDDMScheduler.from_pretrained(directory)`` loads it; as a pipeline's ``scheduler/``
        folder it makes the pipeline sample with the searched schedule.
        """
        path = Path(directory)
        self.scheduler(num_steps).save_pretrained(path)
        record = {
            "temperature": self.base_config.get("temperature", 1.0),
            "best": _candidate_dict(self.best),
            "best_by_steps": {str(k): _candidate_dict(v) for k, v in self.best_by_steps.items()},
            "candidates": [_candidate_dict(c) for c in self.candidates],
        }
        write_json_atomic(path / SEARCH_LOG, record)
        return path


def _candidate_dict(c: ScheduleCandidate) -> dict[str, Any]:
    return {
        "alpha_start": c.alpha_start,
        "beta_start": c.beta_start,
        "num_steps": c.num_steps,
        "betas": list(c.betas),
        "pitch_accuracy": c.pitch_accuracy,
        "log_mel_l1": c.log_mel_l1,
    }


@torch.no_grad()
def propose_schedule(
    scheduler: BDDMScheduler,
    score_model: nn.Module,
    schedule_network: nn.Module,
    mel_spectrogram: torch.Tensor,
    alpha_start: float,
    beta_start: float,
    *,
    max_steps: int,
    beta_floor: float,
    generator: torch.Generator,
) -> list[float]:
    """Grow one schedule from $(\\hat\\alpha_N, \\hat\\beta_N)$ (the module docstring).

    Args:
        scheduler: gives the training noise scales (the continuous steps of the score network).
        score_model: ``score_model(x, t, mel).sample`` predicts the noise.
        schedule_network: ``schedule_network(x, beta_next, noise_scale).beta`` proposes a beta.
        mel_spectrogram: (B, n_mels, frames) spectrograms the proposal is conditioned on; the
            schedule network's betas are averaged over the batch.
        alpha_start: $\\hat\\alpha_N$ in (0, 1).
        beta_start: $\\hat\\beta_N$ in (0, 1).
        max_steps: most betas to collect.
        beta_floor: stop when a proposed beta falls under this.
        generator: the noise of the start and of every step.

    Returns:
        The betas, clean end first (at least one: $\\hat\\beta_N$).
    """
    hop = int(getattr(score_model, "hop_length", 256))
    param = next(score_model.parameters())
    mel = mel_spectrogram.to(device=param.device, dtype=param.dtype)
    shape = (mel.shape[0], 1, mel.shape[-1] * hop)
    x = torch.randn(shape, generator=generator, dtype=torch.float32).to(param.device, param.dtype)
    scales = scheduler.train_noise_scales
    a, b = float(alpha_start), float(beta_start)
    betas: list[float] = []
    for n in range(max_steps):
        betas.append(b)
        t = noise_scale_to_timestep(a, scales)
        eps = score_model(x, t, mel).sample
        a_clean = a / math.sqrt(1.0 - b)  # the noise scale after this step
        noise = None
        if n < max_steps - 1:
            noise = torch.randn(shape, generator=generator, dtype=torch.float32).to(x)
        sigma = math.sqrt(max(b * (1.0 - a_clean**2) / (1.0 - a**2), 0.0))
        x = bddm_step(x, eps, b, a, sigma, noise)
        if noise is None or a_clean >= 1.0:
            break
        proposed = schedule_network(x, b, a_clean).beta
        b_next = float(proposed.float().mean())
        if not b_next >= beta_floor:  # also stops on NaN
            break
        a, b = a_clean, b_next
    return betas[::-1]


def _score(
    scheduler: BDDMScheduler,
    score_model: nn.Module,
    betas: Sequence[float],
    mel_spectrogram: torch.Tensor,
    reference_audio: torch.Tensor,
    f0s: Sequence[float] | None,
    front_end: MelSpectrogram,
    seed: int,
    repeats: int = 1,
    temperature: float | None = None,
) -> tuple[float | None, float]:
    """(pitch accuracy or None, log-mel L1) of the references vocoded with ``betas``, averaged
    over ``repeats`` noise draws (seeds ``seed``, ``seed + 1``, ...)."""
    from diffusers_hub_bddm.evaluate import vocode_and_score
    from diffusers_hub_bddm.pipeline import BDDMPipeline

    pipe = BDDMPipeline(diffwave=score_model, scheduler=scheduler, mel=front_end)  # type: ignore[arg-type]
    pipe.set_progress_bar_config(disable=True)
    length = reference_audio.shape[-1]
    scores = [
        vocode_and_score(
            pipe,
            mel_spectrogram,
            length,
            f0s,
            front_end,
            torch.Generator().manual_seed(seed + r),
            noise_schedule=betas,
            temperature=temperature,
        )
        for r in range(repeats)
    ]
    pitch = None if f0s is None else sum(p or 0.0 for p, _ in scores) / repeats
    return pitch, sum(float(l1.mean()) for _, l1 in scores) / repeats


def search_noise_schedule(
    scheduler: BDDMScheduler,
    score_model: nn.Module,
    schedule_network: nn.Module,
    mel_spectrogram: torch.Tensor,
    reference_audio: torch.Tensor,
    *,
    f0s: Sequence[float] | None = None,
    mel: MelSpectrogram | None = None,
    max_steps: int = 12,
    bins: int = 9,
    attempts: int = 10,
    beta_floor: float | None = None,
    seed: int = 0,
    repeats: int = 1,
    temperature: float | None = None,
    progress: bool = True,
) -> ScheduleSearchResult:
    """Grid-search the start of the schedule network's proposals and keep the best schedule.

    The grid holds ``bins`` values of $\\hat\\alpha_N$ evenly inside the training schedule's
    noise scales and ``bins`` values of $\\hat\\beta_N$ evenly inside (0, 1), without the pairs
    where $\\hat\\alpha_N > \\sqrt{1 - \\hat\\beta_N}$; then the best start of each length is
    perturbed by a factor in [0.95, 1.05] (both values) ``attempts`` times. All candidates
    sample with the same noise (seeded by ``seed``), so they differ only by their schedules;
    ``repeats`` scores each one over that many noise draws, so that a schedule is not picked for
    one lucky draw (a small vocoder's pitch on a clip moves with the noise).

    Args:
        scheduler: the training schedule of ``score_model`` (its ``config`` is kept).
        score_model: the DiffWave score network.
        schedule_network: the trained :class:`~diffusers_hub_bddm.schedule_net.BDDMScheduleNetwork`.
        mel_spectrogram: (B, n_mels, frames) log-mels of the held-out reference clips.
        reference_audio: (B, 1, L) or (B, L) the reference clips (their length crops the
            output).
        f0s: (B,) fundamentals of the references (scores pitch too when given).
        mel: the front end (default :class:`~diffusers_hub_bddm.mel.MelSpectrogram`).
        max_steps: longest schedule (N).
        bins: grid size per axis.
        attempts: perturbed retries of each length's best start.
        beta_floor: stop a proposal under this beta (default: the first training beta).
        seed: seed of all noise and of the perturbations.
        repeats: noise draws each candidate is scored over (the cost grows with it).
        temperature: factor on the sampler's step noise that candidates are scored with
            (default: the scheduler's); the result's scheduler keeps it. The proposals
            themselves take full DDPM steps, as the schedule network was trained on.
        progress: show a progress bar.

    Returns:
        The :class:`ScheduleSearchResult`.

    Raises:
        ValueError: bad sizes or arguments.

    References:
        Lam et al. 2022, arXiv:2203.13508 (Algorithm 2, section 3.4).
    """
    from tqdm.auto import tqdm

    from diffusers_hub_bddm.mel import MelSpectrogram

    if max_steps < 1 or bins < 1 or repeats < 1 or attempts < 0:
        raise ValueError(
            f"max_steps, bins and repeats must be >= 1 and attempts >= 0; got {max_steps}, "
            f"{bins}, {repeats}, {attempts}"
        )
    mels = mel_spectrogram if mel_spectrogram.ndim == 3 else mel_spectrogram[None]
    ref = reference_audio.reshape(mels.shape[0], -1)
    if f0s is not None and len(f0s) != mels.shape[0]:
        raise ValueError(f"got {len(f0s)} f0s for {mels.shape[0]} reference clips")
    front_end = mel if mel is not None else MelSpectrogram()
    floor = float(scheduler.config.beta_start) if beta_floor is None else float(beta_floor)
    temp = check_temperature(scheduler.config.temperature if temperature is None else temperature)
    scales = scheduler.train_noise_scales
    a_lo, a_hi = float(scales[-1]), float(scales[0])
    grid = [
        (a_lo + (a_hi - a_lo) * (i + 1) / (bins + 1), (j + 1) / (bins + 1))
        for j in range(bins)
        for i in range(bins)
    ]
    grid = [(a, b) for a, b in grid if a <= math.sqrt(1.0 - b)]

    was_training = score_model.training, schedule_network.training
    score_model.eval()
    schedule_network.eval()
    candidates: list[ScheduleCandidate] = []
    best_by_steps: dict[int, ScheduleCandidate] = {}

    def run(alpha: float, beta: float) -> None:
        betas = propose_schedule(
            scheduler,
            score_model,
            schedule_network,
            mels,
            alpha,
            beta,
            max_steps=max_steps,
            beta_floor=floor,
            generator=torch.Generator().manual_seed(seed),
        )
        pitch, l1 = _score(
            scheduler, score_model, betas, mels, ref, f0s, front_end, seed + 1, repeats, temp
        )
        c = ScheduleCandidate(alpha, beta, tuple(betas), pitch, l1)
        candidates.append(c)
        held = best_by_steps.get(c.num_steps)
        if held is None or c.sort_key() < held.sort_key():
            best_by_steps[c.num_steps] = c

    try:
        bar = tqdm(total=len(grid), desc="bddm search", disable=not progress, dynamic_ncols=True)
        with bar:
            for alpha, beta in grid:
                run(alpha, beta)
                bar.update(1)
            rng = np.random.default_rng(seed)
            starts = [(c.alpha_start, c.beta_start) for c in best_by_steps.values()]
            bar.reset(total=len(starts) * attempts)
            bar.set_description("bddm search: refining")
            for alpha, beta in starts:
                for _ in range(attempts):
                    a = alpha * float(rng.uniform(0.95, 1.05))
                    b = min(beta * float(rng.uniform(0.95, 1.05)), 1.0 - 1e-6)
                    if a < math.sqrt(1.0 - b):
                        run(a, b)
                    bar.update(1)
    finally:
        score_model.train(was_training[0])
        schedule_network.train(was_training[1])
    if not candidates:
        raise ValueError("the grid holds no valid start; raise bins")
    best = min(best_by_steps.values(), key=ScheduleCandidate.sort_key)
    base = {k: v for k, v in scheduler.config.to_dict().items() if not k.startswith("_")}
    base.pop("noise_schedule", None)
    base["temperature"] = temp
    return ScheduleSearchResult(
        best=best,
        best_by_steps=dict(sorted(best_by_steps.items())),
        candidates=candidates,
        base_config=base,
    )


def read_search_log(directory: str | Path) -> dict[str, Any]:
    """The ``bddm_search.json`` record of a searched scheduler folder."""
    path = Path(directory) / SEARCH_LOG
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no search record (written by `bddm search`)") from None
    return data
