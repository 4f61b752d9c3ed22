"""train glide and its hybrid loss (MSE on the noise + the VLB term with the mean detached)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from diffusers_hub_glide.losses import hybrid_loss, vlb_terms
from diffusers_hub_glide.train import (
    base_scheduler,
    caption_tokenizer,
    main,
    stages_loss,
    upsample_scheduler,
)

from diffusers_hub import DiffusionPipeline
from diffusers_hub.training.losses import sample_timesteps


def test_vlb_is_zero_for_the_true_posterior_and_trains_only_the_variance() -> None:
    abar = base_scheduler().alphas_cumprod.float()
    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand(3, 3, 4, 4, generator=gen) * 2 - 1
    noise = torch.randn(3, 3, 4, 4, generator=gen)
    t = torch.tensor([1, 400, 999])
    a = abar[t][:, None, None, None]
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
    # exact noise and v = -1 (the posterior variance): q and p coincide
    exact = vlb_terms(noise, -torch.ones_like(x0), x0, x_t, t, abar)
    assert exact.abs().max() < 1e-4
    wrong = vlb_terms(noise, torch.ones_like(x0), x0, x_t, t, abar)  # beta_t instead
    assert wrong[0] > 1e-2  # at t = 1 beta and the posterior variance differ most
    # t = 0: the discretised decoder NLL of 8-bit data (under 8 bits per dimension)
    zero = torch.zeros(3, dtype=torch.long)
    x_1 = abar[0].sqrt() * x0 + (1 - abar[0]).sqrt() * noise
    t0 = vlb_terms(noise, torch.zeros_like(x0), x0, x_1, zero, abar)
    assert torch.isfinite(t0).all() and (t0 > 0).all() and (t0 < 8).all()
    out = torch.cat([noise + 0.1, torch.zeros_like(x0)], dim=1).requires_grad_()
    loss, mse, vlb = hybrid_loss(out, x0, x_t, noise, t, abar)
    loss.backward()
    torch.testing.assert_close(out.grad[:, :3], 2 * 0.1 * torch.ones_like(x0) / x0.numel())
    assert out.grad[:, 3:].abs().sum() > 0 and float(mse) > 0 and float(vlb) > 0


def test_upsample_x0_weight_scales_the_noise_error_by_the_clamped_inverse_snr() -> None:
    """W > 1 multiplies each upsampler sample's noise-MSE gradient by min(max(1, 1/SNR), W)."""
    scheduler = upsample_scheduler()
    abar = scheduler.alphas_cumprod

    class Echo(torch.nn.Module):
        """Returns the noisy input plus a learnable offset as the noise, zero variance values."""

        def __init__(self) -> None:
            super().__init__()
            self.offset = torch.nn.Parameter(torch.zeros(4))

        def forward(self, inputs: dict[str, tuple[Any, ...]]) -> dict[str, torch.Tensor]:
            x_t = inputs["upsample"][0]
            eps = x_t + self.offset[:, None, None, None]
            return {"upsample": torch.cat([eps, torch.zeros_like(eps)], dim=1)}

    def offset_grads(weight: float) -> torch.Tensor:
        model = Echo()
        loss = stages_loss({"upsample": scheduler}, 0, 0.0, weight)
        batch = (
            torch.zeros(4, 3, 4, 4),
            torch.zeros(4, 3, 2, 2),
            torch.ones(4, 3, dtype=torch.long),
            torch.ones(4, 3, dtype=torch.bool),
        )
        gen = torch.Generator().manual_seed(0)
        out = loss(model, batch, scheduler, gen)
        out["loss"].backward()
        assert model.offset.grad is not None
        return model.offset.grad

    gen = torch.Generator().manual_seed(0)  # the draws stages_loss makes: uncond coin, t
    torch.rand(4, generator=gen)
    t = sample_timesteps(4, 1000, generator=gen, device=torch.device("cpu"))
    expected = ((1 - abar[t]) / abar[t]).clamp(1.0, 300.0)
    plain, weighted = offset_grads(1.0), offset_grads(300.0)
    assert (plain != 0).all()
    torch.testing.assert_close(weighted / plain, expected.float(), rtol=1e-4, atol=0)
    assert expected.max() > 1.0  # the draw reaches the weighted range


def test_caption_tokenizer_ends_with_end_of_text() -> None:
    tok = caption_tokenizer(["a red circle", "a blue square on the left"], vocab_size=40)
    assert tok.pad_token_id == tok.vocab_size - 1
    assert tok.decode(tok("a red circle").input_ids[0]) == "a red circle"


@pytest.mark.slow
def test_train_command_writes_a_pipeline(tmp_path: Path) -> None:
    out = tmp_path / "run"
    common = ["--steps", "2", "--num-images", "8", "--batch-size", "4", "--log-every", "1"]
    tiny = ["--resolution", "8", "--width", "16", "--no-progress", "--device", "cpu"]
    assert main(["--out", str(out), *common, *tiny]) == 0
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2]
    assert {"base_mse", "base_vlb", "upsample_mse", "upsample_vlb"} <= set(log[-1])
    pipe = DiffusionPipeline.from_pretrained(out)
    pipe.set_progress_bar_config(disable=True)
    images = pipe(
        "a red circle", num_inference_steps=2, upsample_num_inference_steps=2, output_type="np"
    ).images
    assert images.shape == (1, 16, 16, 3)
    # an upsampler trained on its own for an existing base pipeline
    again = tmp_path / "up"
    assert (
        main(["--out", str(again), "--stage", "upsample", "--base", str(out), *common, *tiny]) == 0
    )
    pipe2: Any = DiffusionPipeline.from_pretrained(again)
    assert pipe2.tokenizer.vocab_size == pipe.tokenizer.vocab_size
    torch.testing.assert_close(pipe2.unet.state_dict(), pipe.unet.state_dict())


@pytest.mark.slow
def test_init_continues_from_a_folder_and_keeps_the_rest(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    common = ["--steps", "1", "--num-images", "8", "--batch-size", "4", "--lr", "1e-2"]
    tiny = ["--resolution", "8", "--width", "16", "--no-progress", "--device", "cpu"]
    assert main(["--out", str(first), *common, *tiny]) == 0
    assert (
        main(["--out", str(second), "--stage", "base", "--init", str(first), *common, *tiny]) == 0
    )
    a: Any = DiffusionPipeline.from_pretrained(first)
    b: Any = DiffusionPipeline.from_pretrained(second)
    moved = (b.unet.out[2].weight - a.unet.out[2].weight).abs().max()
    assert 0 < moved < 1  # started from the first run's weights and took a step
    torch.testing.assert_close(b.upsample_unet.state_dict(), a.upsample_unet.state_dict())
    assert b.tokenizer.encode("a red circle") == a.tokenizer.encode("a red circle")
