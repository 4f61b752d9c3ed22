"""End-to-end sampler correctness without trained weights: sampling the exact Gaussian oracle.

For data x_0 ~ N(0, s^2 I) the exact noise predictor is known in closed form
(:class:`diffusers_hub.testing.GaussianOracle`). Every correct sampler driven by it must return
samples whose standard deviation approaches s as its steps grow. With few steps all of them shrink
the spread (measured, s = 0.5: DDIM 0.437 at 20 steps, DPM-Solver++(2M) 0.407 at 10), exactly as
the diffusers schedulers do in the same loop; the step counts below are where they converge.
"""

from __future__ import annotations

import pytest
import torch

from diffusers_hub import registry
from diffusers_hub.testing import GaussianOracle

DATA_STD = 0.5


def sample_std(name: str, steps: int, **overrides: object) -> float:
    oracle = GaussianOracle(data_std=DATA_STD, in_channels=1, sample_size=16)
    cls = registry.scheduler(name)
    if "clip_sample" in cls.config_class.model_fields:
        overrides = {"clip_sample": False, **overrides}
    scheduler = cls(num_train_timesteps=1000, **overrides)
    scheduler.set_timesteps(steps)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 16, 16, generator=g, dtype=torch.float64) * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        eps = oracle(scheduler.scale_model_input(x, t), t).sample
        x = scheduler.step(eps, t, x, generator=g).prev_sample
    return float(x.std())


@pytest.mark.parametrize(
    ("name", "steps", "overrides"),
    [
        ("ddpm", 1000, {}),
        ("ddpm", 250, {"variance_type": "fixed_large"}),
        ("ddim", 200, {}),
        ("pndm", 100, {}),
        ("pndm", 100, {"skip_prk_steps": True}),
        ("deis", 100, {"solver_order": 3}),
        ("dpm-solver", 100, {"solver_order": 2}),
        ("dpm-solver", 50, {"solver_order": 3, "use_karras_sigmas": True}),
    ],
)
def test_samplers_recover_the_data_std(name: str, steps: int, overrides: dict) -> None:
    std = sample_std(name, steps, **overrides)
    assert abs(std - DATA_STD) < 0.02, std


def test_oracle_round_trip_and_pipeline_use(tmp_path) -> None:
    from diffusers_hub_ddpm.pipeline import DDPMPipeline

    oracle = GaussianOracle(data_std=0.3, in_channels=1)
    oracle.save_pretrained(tmp_path / "oracle")
    loaded = GaussianOracle.from_pretrained(tmp_path / "oracle")
    assert loaded.config == oracle.config
    scheduler = registry.scheduler("ddpm")(clip_sample=False)
    pipe = DDPMPipeline(unet=loaded, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    images = pipe(
        batch_size=16,
        generator=torch.Generator().manual_seed(0),
        num_inference_steps=100,
        output_type="pt",
    ).images
    # images are (x + 1) / 2: std 0.3 data gives std 0.15 pixels around 0.5
    assert abs(float(images.std()) - 0.15) < 0.02
    assert abs(float(images.mean()) - 0.5) < 0.02
