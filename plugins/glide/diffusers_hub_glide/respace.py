"""GLIDE's sampling arithmetic: the release's timestep respacing and eps-only guidance.

Respacing keeps a subset S of the T training timesteps; the respaced process has
$\\beta'_i = 1 - \\bar\\alpha_{s_i} / \\bar\\alpha_{s_{i-1}}$ (recomputed from $\\bar\\alpha$, not
strided betas). :class:`~diffusers_hub_ddpm.DDPMScheduler` and
:class:`~diffusers_hub_ddim.DDIMScheduler` given ``set_timesteps(timesteps=S)`` step between
consecutive kept timesteps with exactly these betas, learned-range variance included, so the
schedulers are reused as they are; this module only chooses S.

References:
    Nichol & Dhariwal 2021, "Improved Denoising Diffusion Probabilistic Models", arXiv:2102.09672
    (section 4, strided sampling); Nichol et al. 2021, arXiv:2112.10741 ("fast27");
    Ho & Salimans 2022, arXiv:2207.12598 (classifier-free guidance).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from diffusers_hub.pipeline import guided_noise

__all__ = ["guided_model_output", "respaced_betas", "respaced_timesteps", "space_timesteps"]


def space_timesteps(num_train_timesteps: int, section_counts: str | Sequence[int]) -> set[int]:
    """The training timesteps kept by a respacing spec, as the release computes them.

    Args:
        num_train_timesteps: T.
        section_counts: ``"ddimN"`` (the integer stride that gives exactly N steps, from 0);
            ``"fast27"`` (``"10,10,3,2,2"`` with T - 1 swapped for T - 3); or comma-separated
            counts ``"a,b,..."``: T is cut into equal sections (the first ``T % k`` one longer)
            and section i contributes ``count_i`` steps at a fractional stride, rounded.

    Returns:
        The kept timesteps (a set of ints in [0, T)).

    Raises:
        ValueError: a spec that cannot be met (more steps than a section holds, no stride).
    """
    total = int(num_train_timesteps)
    if isinstance(section_counts, str):
        spec = section_counts.strip()
        if spec.startswith("ddim"):
            try:
                desired = int(spec[len("ddim") :])
            except ValueError:
                raise ValueError(
                    f"respacing {spec!r}: expected 'ddimN' with an integer N"
                ) from None
            for stride in range(1, total):
                if len(range(0, total, stride)) == desired:
                    return set(range(0, total, stride))
            raise ValueError(f"respacing {spec!r}: no integer stride gives exactly {desired} steps")
        if spec == "fast27":
            steps = space_timesteps(total, "10,10,3,2,2")
            steps.discard(total - 1)  # the release avoids DDIM artifacts of the noisiest step
            steps.add(total - 3)
            return steps
        try:
            counts = [int(part) for part in spec.split(",")]
        except ValueError:
            raise ValueError(f"respacing {spec!r}: use 'N', 'a,b,c', 'fast27' or 'ddimN'") from None
    else:
        counts = [int(part) for part in section_counts]
    if not counts or min(counts) < 1:
        raise ValueError(f"respacing {section_counts!r}: every section needs >= 1 step")
    size_per, extra = divmod(total, len(counts))
    start = 0
    kept: list[int] = []
    for i, count in enumerate(counts):
        size = size_per + (1 if i < extra else 0)
        if size < count:
            raise ValueError(
                f"respacing {section_counts!r}: cannot take {count} steps from a section of {size}"
            )
        stride = 1.0 if count <= 1 else (size - 1) / (count - 1)
        position = 0.0
        for _ in range(count):
            kept.append(start + round(position))
            position += stride
        start += size
    return set(kept)


def respaced_timesteps(
    num_train_timesteps: int, spec: str | int | Sequence[int]
) -> npt.NDArray[np.int64]:
    """:func:`space_timesteps` as a descending array for ``scheduler.set_timesteps(timesteps=...)``.

    An int ``n`` means the spec ``"n"`` (one section: n steps evenly strided over [0, T - 1]).
    """
    if isinstance(spec, int | np.integer):
        spec = str(int(spec))
    kept = space_timesteps(num_train_timesteps, spec)
    return np.asarray(sorted(kept, reverse=True), dtype=np.int64)


def respaced_betas(
    alphas_cumprod: Sequence[float] | npt.NDArray[np.float64] | Tensor,
    timesteps: Sequence[int] | npt.NDArray[np.int64],
) -> npt.NDArray[np.float64]:
    """Betas of the respaced process: ``1 - abar[s_i] / abar[s_{i-1}]`` over ascending kept steps.

    Args:
        alphas_cumprod: (T,) $\\bar\\alpha$ of the training schedule.
        timesteps: the kept timesteps (any order).

    Returns:
        (len(timesteps),) float64 betas, in ascending timestep order.
    """
    abar = np.asarray(
        alphas_cumprod.double().cpu() if isinstance(alphas_cumprod, Tensor) else alphas_cumprod,
        dtype=np.float64,
    )
    kept = sorted(int(t) for t in timesteps)
    previous = np.concatenate([[1.0], abar[kept][:-1]])
    return 1.0 - abar[kept] / previous  # type: ignore[no-any-return]


def guided_model_output(model_output: Tensor, guidance_scale: float, channels: int) -> Tensor:
    """Classifier-free guidance on the noise channels of a [cond, uncond] batch.

    ``model_output`` is (2B, 2C, H, W): rows [0, B) conditional, [B, 2B) unconditional; channels
    [0, C) noise, [C, 2C) learned-range variance values. The result is (B, 2C, H, W): the guided
    noise ``eps_u + s * (eps_c - eps_u)`` followed by the conditional rows' variance channels
    (the variance is passed through, never guided), as the release's sampler does.

    Args:
        model_output: (2B, 2C, H, W) one UNet call on the doubled batch.
        guidance_scale: s (1 gives the conditional prediction).
        channels: C, the image channels.

    References:
        Nichol et al. 2021, arXiv:2112.10741, eq. (4) / section 2.3.
    """
    if model_output.shape[0] % 2:
        raise ValueError(
            f"guided_model_output needs a [cond, uncond] batch of even size, got {model_output.shape[0]}"
        )
    eps, rest = model_output[:, :channels], model_output[:, channels:]
    cond_eps, uncond_eps = eps.chunk(2)
    cond_rest = rest.chunk(2)[0]
    return torch.cat([guided_noise(uncond_eps, cond_eps, guidance_scale), cond_rest], dim=1)
