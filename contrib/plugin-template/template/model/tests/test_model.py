"""Tests of the example model: the diffusers-hub conformance kit plus the model's own checks."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch
from diffusers_hub.errors import ConfigError
from diffusers_hub.testing import ModelContract

from {{ package }}.model import (
    {{ class_name }},
)

TINY: dict[str, Any] = {
    "sample_size": 8,
    "hidden_channels": 16,
    "num_blocks": 2,
    "norm_num_groups": 4,
    "time_embedding_dim": 16,
}


class Test{{ class_name }}Contract(ModelContract):
    """Every check that diffusers-hub makes of a model."""

    model_class = {{ class_name }}
    model_config: ClassVar[dict[str, Any]] = TINY

    def make_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(0)
        sample = torch.randn(batch_size, 3, 8, 8, generator=g)
        return sample, torch.arange(batch_size) * 7 + 3


def test_scalar_timestep_broadcasts() -> None:
    model = {{ class_name }}(**TINY).eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        a = model(x, 5).sample
        b = model(x, torch.tensor([5, 5])).sample
    torch.testing.assert_close(a, b)


def test_rejects_groups_that_do_not_divide_the_channels() -> None:
    with pytest.raises(ConfigError, match="norm_num_groups"):
        {{ class_name }}(**{**TINY, "norm_num_groups": 5})


def test_a_few_training_steps_lower_the_loss() -> None:
    torch.manual_seed(0)
    model = {{ class_name }}(**TINY)
    x0 = torch.rand(4, 3, 8, 8) * 2 - 1
    noise = torch.randn_like(x0)
    t = torch.tensor([10, 200, 500, 900])
    alpha_bar = torch.linspace(0.999, 0.01, 1000)[t].reshape(-1, 1, 1, 1)
    noisy = alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss = torch.nn.functional.mse_loss(model(noisy, t).sample, noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
