"""``diffusers-hub train bddm-schedule``: train BDDM's schedule network against a frozen vocoder.

Example:
    diffusers-hub train bddm-schedule --model bddm-notes --steps 2000 --out bddm-notes-galr
    diffusers-hub bddm search --model bddm-notes-galr --steps 12 --out bddm-notes-galr/scheduler

The score network of ``--model`` (a ``BDDMPipeline`` folder) stays fixed; the schedule network
$\\sigma_\\phi$ learns, on the same kind of notes, the step loss of BDDM: for a training step t
drawn from $\\{\\tau, \\dots, T - \\tau - 1\\}$, noise the clip to $x_t = \\alpha_t x_0 +
\\delta_t z$ ($\\alpha_t = \\sqrt{\\bar\\alpha_t}$, $\\delta_t^2 = 1 - \\alpha_t^2$), let the
network propose $\\hat\\beta_t = \\min\\{\\beta^+, \\delta_t^2\\}\\,\\sigma_\\phi(x_t)$ with the
beta $\\beta^+ = 1 - \\alpha_{t+\\tau}^2 / \\alpha_t^2$ of a step $\\tau$ noisier, and minimise
the KL bound of that step (eq. 13-14 of the paper, per sample of the clip)

$$\\frac{\\delta_t^2}{2(\\delta_t^2 - \\hat\\beta_t)}\\Big\\|z - \\frac{\\hat\\beta_t}{\\delta_t^2}
\\epsilon_\\theta(x_t, t)\\Big\\|^2 \\Big/ L + \\frac14 \\log\\frac{\\delta_t^2}{\\hat\\beta_t}
+ \\frac12\\Big(\\frac{\\hat\\beta_t}{\\delta_t^2} - 1\\Big).$$

The output folder is the input pipeline with the trained ``schedule_net/`` added (EMA weights),
ready for ``bddm search``; ``checkpoints/`` and ``--resume`` work as in every train command.

References:
    Lam, Wang, Su, Yu. BDDM, ICLR 2022, arXiv:2203.13508 (section 3.3, eq. 13-14, Algorithm 1).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from diffusers_hub.training import TrainCommand, TrainJob
from diffusers_hub.training.distributed import DistributedContext
from diffusers_hub_bddm.diffwave import DiffWave
from diffusers_hub_bddm.schedule_net import BDDMScheduleNetwork

__all__ = ["COMMAND", "ScheduleTrainingModel", "main", "step_loss"]


def step_loss(
    noise: Tensor, eps: Tensor, beta: Tensor, noise_variance: Tensor, eps_floor: float = 1e-8
) -> Tensor:
    """BDDM's step loss of each clip (the release's, divided by the clip length).

    Args:
        noise: (B, 1, L) the noise $z$ in $x_t$.
        eps: (B, 1, L) the score network's prediction $\\epsilon_\\theta(x_t, t)$.
        beta: (B,) the proposed $\\hat\\beta_t$.
        noise_variance: (B,) $\\delta_t^2 = 1 - \\alpha_t^2$.
        eps_floor: keeps the logarithm and the division finite.

    Returns:
        (B,) losses.

    References:
        Lam et al. 2022, arXiv:2203.13508 (eq. 14).
    """
    d2 = noise_variance.reshape(-1, 1, 1)
    b = beta.reshape(-1, 1, 1)
    weight = d2 / (2.0 * (d2 - b).clamp_min(eps_floor))
    fit = (weight * (noise - b / d2 * eps).square()).flatten(1).mean(dim=1)
    d2, b = d2.flatten(), b.flatten()
    return fit + torch.log(eps_floor + d2 / (b + eps_floor)) / 4.0 + (b / d2 - 1.0) / 2.0


class ScheduleTrainingModel(nn.Module):
    """The frozen score network and the schedule network under training, as one module.

    ``forward`` runs both on one noisy batch, so that the training loop (and DDP) sees one
    model; only ``schedule_net`` is optimised (``diffwave`` is frozen by the job).
    """

    def __init__(self, diffwave: DiffWave, schedule_net: BDDMScheduleNetwork) -> None:
        super().__init__()
        self.diffwave = diffwave
        self.schedule_net = schedule_net

    def forward(
        self, x_t: Tensor, t: Tensor, mel: Tensor, beta_next: Tensor, noise_scale: Tensor
    ) -> tuple[Tensor, Tensor]:
        """(eps (B, 1, L), proposed beta (B,)) for noisy clips ``x_t`` at integer steps ``t``."""
        with torch.no_grad():
            eps = self.diffwave(x_t, t, mel).sample
        beta = self.schedule_net(x_t, beta_next, noise_scale).beta
        return eps, beta


def _make_loss(tau: int) -> Any:
    def loss(model: nn.Module, batch: Any, scheduler: Any, generator: torch.Generator) -> Tensor:
        audio, mel = batch
        device = audio.device
        scales = torch.as_tensor(scheduler.train_noise_scales, dtype=torch.float32).to(device)
        total = scales.shape[0]
        b = audio.shape[0]
        t = torch.randint(tau, total - tau, (b,), generator=generator, device="cpu").to(device)
        alpha = scales[t]
        beta_next = 1.0 - (scales[t + tau] / alpha) ** 2
        variance = 1.0 - alpha**2
        z = torch.randn(audio.shape, generator=generator, device="cpu").to(device)
        x_t = alpha.reshape(-1, 1, 1) * audio + variance.sqrt().reshape(-1, 1, 1) * z
        eps, beta = model(x_t, t, mel, beta_next, alpha)
        return step_loss(z, eps, beta, variance).mean()

    return loss


def _add_arguments(p: argparse.ArgumentParser) -> None:
    from diffusers_hub_bddm.data import add_note_arguments

    add_note_arguments(p, items=20000, segment=4096, seed=0, title="training notes")
    g = p.add_argument_group("score network")
    g.add_argument(
        "--model", required=True, type=Path, help="BDDMPipeline folder of the frozen vocoder"
    )
    g.add_argument(
        "--tau", type=int, default=66, help="training steps between a step and its bound (66)"
    )

    g = p.add_argument_group("schedule network (defaults: the release's)")
    g.add_argument("--blocks", type=int, default=1)
    g.add_argument("--input-dim", type=int, default=128)
    g.add_argument("--hidden-dim", type=int, default=128)
    g.add_argument("--window-length", type=int, default=8)
    g.add_argument("--segment-size", type=int, default=64)
    g.add_argument("--low-dim", type=int, default=8)
    g.add_argument("--attention-heads", type=int, default=8)


def _prepare(args: argparse.Namespace, ctx: DistributedContext) -> TrainJob:
    from diffusers_hub_bddm.data import notes_from_arguments
    from diffusers_hub_bddm.pipeline import BDDMPipeline

    pipe = BDDMPipeline.from_pretrained(args.model)
    scheduler = pipe.scheduler
    total = scheduler.config.num_train_timesteps
    if not 1 <= args.tau < math.ceil(total / 2):
        raise SystemExit(
            f"--tau {args.tau}: must be at least 1 and leave steps to draw (below {total} / 2)"
        )
    net_fields: dict[str, Any] = {
        "blocks": args.blocks,
        "input_dim": args.input_dim,
        "hidden_dim": args.hidden_dim,
        "window_length": args.window_length,
        "segment_size": args.segment_size,
        "low_dim": args.low_dim,
        "attention_heads": args.attention_heads,
    }
    BDDMScheduleNetwork.config_class.model_validate(net_fields)  # fail before the run starts
    mel = pipe.mel
    dataset = notes_from_arguments(args, mel)
    diffwave = pipe.diffwave.float()

    def model() -> nn.Module:
        return ScheduleTrainingModel(diffwave, BDDMScheduleNetwork(net_fields))

    def export(ema: nn.Module, sched: Any) -> BDDMPipeline:
        assert isinstance(ema, ScheduleTrainingModel)
        return BDDMPipeline(
            diffwave=ema.diffwave, scheduler=sched, mel=mel, schedule_net=ema.schedule_net
        )

    return TrainJob(
        model=model,
        dataset=dataset,
        scheduler=scheduler,
        export=export,
        loss=_make_loss(args.tau),
        frozen=("diffwave",),
        saved="BDDM pipeline with its schedule network",
    )


COMMAND = TrainCommand(
    "bddm-schedule",
    "Train BDDM's schedule network against a frozen DiffWave vocoder (a BDDMPipeline folder).",
    _add_arguments,
    _prepare,
    defaults={"batch_size": 8, "lr": 1e-4, "ema_decay": 0.999, "grad_clip": 5.0},
)


def main(argv: list[str] | None = None) -> int:
    """Run ``train bddm-schedule`` with the given arguments; returns the exit code."""
    return COMMAND.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
