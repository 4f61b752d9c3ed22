"""GLIDEPipeline: the pipeline contract, both stages, one doubled UNet call per guided step."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch
from diffusers_hub_glide.pipeline import GLIDEPipeline, quantize
from diffusers_hub_glide.respace import respaced_timesteps
from diffusers_hub_glide.train import base_scheduler, caption_tokenizer, upsample_scheduler
from diffusers_hub_glide.unet import GLIDEUNetModel

from diffusers_hub.testing import PipelineContract

from .conftest import small_config

PROMPTS = ["a red circle", "a small blue square on the left", "a green triangle"]


def make_pipeline(upsample: bool = True) -> GLIDEPipeline:
    tokenizer = caption_tokenizer(PROMPTS, vocab_size=40, text_ctx=6)
    torch.manual_seed(0)
    base = GLIDEUNetModel(**small_config(vocab_size=tokenizer.vocab_size)).eval()
    up_config = {**small_config(super_res=True, vocab_size=tokenizer.vocab_size), "sample_size": 16}
    up = GLIDEUNetModel(**up_config).eval() if upsample else None
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for model in (base, up):
            for p in model.parameters() if model is not None else ():
                p.add_(torch.randn(p.shape, generator=gen) * 0.02)
    return GLIDEPipeline(
        unet=base,
        scheduler=base_scheduler(),
        tokenizer=tokenizer,
        upsample_unet=up,
        upsample_scheduler=upsample_scheduler() if upsample else None,
    )


class TestGLIDEPipeline(PipelineContract):
    """The contract on the base stage (the upsampler is covered below and by the converter)."""

    call_kwargs: ClassVar[dict[str, Any]] = {"prompt": "a red circle", "num_inference_steps": 2}

    def make_pipeline(self) -> GLIDEPipeline:
        return make_pipeline(upsample=False)


def test_stages_sizes_and_guided_batches() -> None:
    pipe = make_pipeline()
    pipe.set_progress_bar_config(disable=True)
    calls: list[tuple[str, int]] = []
    for name in ("unet", "upsample_unet"):
        model = getattr(pipe, name)
        original = model.forward

        def spy(*args: Any, _name: str = name, _f: Any = original, **kw: Any) -> Any:
            calls.append((_name, args[0].shape[0]))
            return _f(*args, **kw)

        model.forward = spy
    gen = torch.Generator().manual_seed(0)
    out = pipe(
        PROMPTS[:2],
        num_inference_steps=3,
        upsample_num_inference_steps="4",
        generator=gen,
        output_type="np",
    )
    assert out.images.shape == (2, 16, 16, 3)
    assert calls == [("unet", 4)] * 3 + [("upsample_unet", 2)] * 4
    calls.clear()
    small = pipe(
        PROMPTS[:2], num_inference_steps=2, guidance_scale=1.0, upsample=False, output_type="pt"
    ).images
    assert small.shape == (2, 3, 8, 8) and calls == [("unet", 2)] * 2


def test_upsample_needs_the_components_and_quantize_rounds() -> None:
    pipe = make_pipeline(upsample=False)
    with pytest.raises(ValueError, match="upsample_unet"):
        pipe("a red circle", num_inference_steps=1, upsample=True)
    assert pipe("a red circle", num_inference_steps=1, output_type="np").images.shape[1] == 8
    levels = quantize(torch.linspace(-1.2, 1.2, 101))
    assert levels.min() == -1 and levels.max() == 1
    assert torch.allclose((levels + 1) * 127.5, ((levels + 1) * 127.5).round(), atol=1e-4)


def test_upsample_strength_starts_from_the_noised_resize() -> None:
    pipe = make_pipeline()
    pipe.set_progress_bar_config(disable=True)
    images = torch.rand(2, 3, 8, 8) * 2 - 1
    prompts = PROMPTS[:2]
    resized = torch.nn.functional.interpolate(
        quantize(images), (16, 16), mode="bilinear", align_corners=False
    )

    def upsample(strength: float) -> torch.Tensor:
        gen = torch.Generator().manual_seed(0)
        return pipe.upsample_images(images, prompts, strength=strength, generator=gen)

    # strength 1 is the release's sampler, the one __call__ runs by default
    calls: list[int] = []
    gen = torch.Generator().manual_seed(0)
    out = pipe.upsample_images(
        images, prompts, generator=gen, callback=lambda i, t, x: calls.append(t)
    )
    total = pipe.upsample_scheduler.config.num_train_timesteps
    assert calls == respaced_timesteps(total, "fast27").tolist()
    assert torch.equal(out, upsample(1.0))
    # a low strength keeps only the last steps and starts near the resize: the output is the
    # resize refined a little (a random model moves it little at low noise), not a new image
    near = upsample(0.02)
    assert (near - resized).abs().mean() < 0.05 < (out - resized).abs().mean()
    assert (upsample(0.5) - resized).abs().mean() < (out - resized).abs().mean()
    with pytest.raises(ValueError, match="upsample_strength must be in"):
        upsample(0.0)
    with pytest.raises(ValueError, match="upsample_strength must be in"):
        pipe("a red circle", num_inference_steps=1, upsample_strength=1.5)
    with pytest.raises(ValueError, match="2 images but 1 prompts"):
        pipe.upsample_images(images, prompts[:1])
