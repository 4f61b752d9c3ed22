"""A fake model for users' tests (``GaussianOracle``); import it from
:mod:`diffusers_hub.testing`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from diffusers_hub.config import ComponentConfig
from diffusers_hub.modeling import ModelMixin


class GaussianOracleConfig(ComponentConfig):
    """Config of :class:`GaussianOracle`: the data distribution and the noise schedule it knows."""

    sample_size: int = 8
    in_channels: int = 3
    data_std: float = 0.5
    num_train_timesteps: int = 1000
    beta_start: float = 0.0001
    beta_end: float = 0.02
    beta_schedule: str = "linear"


@dataclass
class OracleOutput:
    """What :class:`GaussianOracle` returns (``.sample``, like a UNet)."""

    sample: torch.Tensor


class GaussianOracle(ModelMixin):
    """The exact noise predictor for data x_0 ~ N(0, data_std^2 I): a fake UNet for tests.

    For Gaussian data the posterior mean of the noise is linear in x_t:
    E[eps | x_t] = sqrt(1 - ab_t) x_t / (ab_t s^2 + 1 - ab_t), with s = ``data_std`` and ab_t the
    cumulative alpha of the configured schedule. A correct sampler driven by this "model" must
    therefore produce samples whose standard deviation is close to ``data_std``: an end-to-end
    check of a scheduler that needs no trained weights. It has no parameters and saves and loads
    like any model, so pipelines accept it as their ``unet``.

    Example:
        >>> oracle = GaussianOracle(data_std=0.5, in_channels=1)
        >>> oracle(torch.zeros(2, 1, 8, 8), 999).sample.shape
        torch.Size([2, 1, 8, 8])
    """

    config_class = GaussianOracleConfig
    config: GaussianOracleConfig

    def __init__(self, config: GaussianOracleConfig | None = None, **fields: Any) -> None:
        super().__init__(config, **fields)
        from diffusers_hub.schedules import alphas_cumprod, betas_for_schedule

        c = self.config
        betas = betas_for_schedule(c.beta_schedule, c.num_train_timesteps, c.beta_start, c.beta_end)
        self._alpha_bar = torch.from_numpy(alphas_cumprod(betas))

    @property
    def in_channels(self) -> int:
        return self.config.in_channels

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def forward(self, sample: torch.Tensor, timestep: Any) -> OracleOutput:
        t = torch.as_tensor(timestep).long().reshape(-1).cpu()
        ab = (
            self._alpha_bar[t]
            .to(sample.device, torch.float64)
            .reshape(-1, *[1] * (sample.ndim - 1))
        )
        s2 = self.config.data_std**2
        eps = (1 - ab).sqrt() * sample.double() / (ab * s2 + 1 - ab)
        return OracleOutput(sample=eps.to(sample.dtype))
