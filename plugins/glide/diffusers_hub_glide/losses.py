"""The hybrid objective of models with a learned-range variance: L_simple + L_vlb (mean detached).

For a model whose output is (noise, v) with v in [-1, 1] interpolating the log variance between
$\\tilde\\beta_t$ and $\\beta_t$, the loss is ``mse(eps_hat, eps) + L_t`` where L_t is the
variational bound term at t (bits per dimension) computed with the noise prediction detached, so
that L_vlb trains only the variance. Sampling t uniformly makes ``L_t`` an estimate of
``L_vlb / T``: the paper's lambda = 0.001 at T = 1000.

References:
    Nichol & Dhariwal 2021, "Improved Denoising Diffusion Probabilistic Models", arXiv:2102.09672
    (eqs. 4-5, 15-16 and section 3.1).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["discretized_gaussian_nll", "gaussian_kl", "hybrid_loss", "vlb_terms"]


def gaussian_kl(mean1: Tensor, logvar1: Tensor, mean2: Tensor, logvar2: Tensor) -> Tensor:
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)), elementwise, in nats."""
    return 0.5 * (
        -1.0
        + logvar2
        - logvar1
        + torch.exp(logvar1 - logvar2)
        + (mean1 - mean2) ** 2 * torch.exp(-logvar2)
    )


def _std_normal_cdf(x: Tensor) -> Tensor:
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def discretized_gaussian_nll(x0: Tensor, mean: Tensor, log_scale: Tensor) -> Tensor:
    """-log p(x0) for 8-bit data in [-1, 1] under N(mean, e^{2 log_scale}) binned to 1/255 wide
    steps (the edge bins take the tails), elementwise, in nats.

    References:
        Ho et al. 2020, arXiv:2006.11239, eq. 13.
    """
    centered = x0 - mean
    inv_std = torch.exp(-log_scale)
    cdf_plus = _std_normal_cdf(inv_std * (centered + 1.0 / 255.0))
    cdf_minus = _std_normal_cdf(inv_std * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_minus = torch.log((1.0 - cdf_minus).clamp(min=1e-12))
    log_delta = torch.log((cdf_plus - cdf_minus).clamp(min=1e-12))
    log_probs = torch.where(
        x0 < -0.999, log_cdf_plus, torch.where(x0 > 0.999, log_one_minus_cdf_minus, log_delta)
    )
    return -log_probs


def _per_sample(values: Tensor) -> Tensor:
    return values.flatten(1).mean(dim=1)


def vlb_terms(
    eps: Tensor,
    variance_values: Tensor,
    x0: Tensor,
    x_t: Tensor,
    t: Tensor,
    alphas_cumprod: Tensor,
) -> Tensor:
    """The bound term L_t per sample, in bits per dimension.

    ``L_t = KL(q(x_{t-1} | x_t, x0) || p(x_{t-1} | x_t))`` for t > 0 and the decoder's
    discretised NLL for t = 0, with $p$'s mean from ``eps`` (no clipping) and its log variance
    ``f log(beta_t) + (1 - f) log(beta~_t)``, ``f = (v + 1) / 2`` (eq. 15; beta~_0 is replaced by
    beta~_1, as the release clips it).

    Args:
        eps: (B, C, H, W) the noise prediction (detach it for the hybrid loss).
        variance_values: (B, C, H, W) v in [-1, 1].
        x0: (B, C, H, W) the clean sample.
        x_t: (B, C, H, W) the noised sample.
        t: (B,) int timesteps.
        alphas_cumprod: (T,) $\\bar\\alpha$ (any float dtype; computed in float64).

    Returns:
        (B,) the term for each sample.
    """
    abar = alphas_cumprod.to(device=x0.device, dtype=torch.float64)
    abar_prev_all = torch.cat([abar.new_ones(1), abar[:-1]])
    betas = 1.0 - abar / abar_prev_all
    posterior_var = betas * (1.0 - abar_prev_all) / (1.0 - abar)
    posterior_log_var = torch.log(torch.cat([posterior_var[1:2], posterior_var[1:]]))

    def at(table: Tensor) -> Tensor:
        return table[t].to(x0.dtype)[:, None, None, None]

    a_t, a_prev, beta = at(abar), at(abar_prev_all), at(betas)
    coef_x0 = beta * a_prev.sqrt() / (1.0 - a_t)
    coef_xt = (1.0 - a_prev) * (1.0 - beta).sqrt() / (1.0 - a_t)
    true_mean = coef_x0 * x0 + coef_xt * x_t
    true_log_var = at(posterior_log_var)

    x0_hat = (x_t - (1.0 - a_t).sqrt() * eps) / a_t.sqrt()
    model_mean = coef_x0 * x0_hat + coef_xt * x_t
    frac = (variance_values + 1.0) / 2.0
    model_log_var = frac * torch.log(beta) + (1.0 - frac) * true_log_var  # eq. 15

    kl = _per_sample(gaussian_kl(true_mean, true_log_var, model_mean, model_log_var)) / math.log(
        2.0
    )
    nll = _per_sample(discretized_gaussian_nll(x0, model_mean, 0.5 * model_log_var)) / math.log(2.0)
    return torch.where(t == 0, nll, kl)


def hybrid_loss(
    model_output: Tensor,
    x0: Tensor,
    x_t: Tensor,
    noise: Tensor,
    t: Tensor,
    alphas_cumprod: Tensor,
    weights: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """``mse(eps_hat, eps) + L_t`` with the mean detached in L_t (L_hybrid, section 3.1).

    Args:
        model_output: (B, 2C, H, W) noise prediction then variance values.
        x0: (B, C, H, W) the clean sample.
        x_t: (B, C, H, W) its noised version.
        noise: (B, C, H, W) the noise drawn.
        t: (B,) timesteps.
        alphas_cumprod: (T,) $\\bar\\alpha$ of the training schedule.
        weights: (B,) optional weights of each sample's noise MSE (the logged ``mse`` stays
            unweighted).

    Returns:
        ``(loss, mse, vlb)``: scalars.
    """
    channels = x0.shape[1]
    if model_output.shape[1] != 2 * channels:
        raise ValueError(
            f"the hybrid loss needs 2 x {channels} output channels (noise, variance), got "
            f"{model_output.shape[1]}"
        )
    eps, values = model_output[:, :channels].float(), model_output[:, channels:].float()
    per_sample = _per_sample((eps - noise.float()) ** 2)
    mse = per_sample.mean()
    fit = mse if weights is None else (weights.to(per_sample) * per_sample).mean()
    vlb = vlb_terms(eps.detach(), values, x0.float(), x_t.float(), t, alphas_cumprod).mean()
    return fit + vlb, mse.detach(), vlb.detach()
