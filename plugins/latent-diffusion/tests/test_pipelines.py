"""The text-to-image and unconditional pipelines: parity with diffusers on random tiny weights,
registry-driven loading, reproducible eta > 0, scheduler swapping, save / load round trips, the
seed's example."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers_hub_ddim.scheduler import DDIMScheduler
from diffusers_hub_latent_diffusion.autoencoder import AutoencoderKL
from diffusers_hub_latent_diffusion.ldmbert import LDMBertModel
from diffusers_hub_latent_diffusion.pipeline_text2img import LDMTextToImagePipeline
from diffusers_hub_latent_diffusion.pipeline_uncond import LDMPipeline
from diffusers_hub_latent_diffusion.tokenizer import BertTokenizer
from diffusers_hub_latent_diffusion.train import LDM_DDIM_SETTINGS
from diffusers_hub_latent_diffusion.unet_2d_condition import UNet2DConditionModel

from diffusers_hub import registry
from diffusers_hub.pipeline import DiffusionPipeline
from diffusers_hub.testing import perturb

from .conftest import tiny_autoencoder, tiny_unet

WORDS = [
    "a",
    "red",
    "blue",
    "green",
    "circle",
    "square",
    "triangle",
    "on",
    "the",
    "left",
    "right",
    "top",
    "of",
    "painting",
    "squirrel",
]
PROMPTS = ["a red circle on the left", "A painting of a squirrel; blue square!"]
D_MODEL = 32
SEED_EXAMPLE = (
    Path(__file__).resolve().parents[3] / "docs" / "examples" / "seed_latent_diffusion.py"
)
SEED_WORDS = ["a", "painting", "of", "squirrel", "eating", "burger", "red", "circle"]


@pytest.fixture(scope="module")
def text2img(tmp_path_factory: pytest.TempPathFactory):
    diffusers = pytest.importorskip("diffusers")
    transformers = pytest.importorskip("transformers")
    from diffusers.pipelines.latent_diffusion import pipeline_latent_diffusion as ref

    folder = tmp_path_factory.mktemp("t2i")
    vocab = folder / "vocab.txt"
    vocab.write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, ";", "!"]) + "\n"
    )
    tokenizer = transformers.BertTokenizer(str(vocab))
    torch.manual_seed(0)
    bert = ref.LDMBertModel(
        ref.LDMBertConfig(
            vocab_size=40,
            encoder_layers=2,
            encoder_ffn_dim=64,
            encoder_attention_heads=2,
            head_dim=16,
            d_model=D_MODEL,
        )
    ).eval()
    vae = diffusers.AutoencoderKL(**tiny_autoencoder((8, 8, 16, 16), sample_size=64)).eval()
    unet = diffusers.UNet2DConditionModel(**tiny_unet(cross_attention_dim=D_MODEL)).eval()
    for i, model in enumerate((bert, vae, unet)):
        perturb(model, i)
    scheduler = diffusers.DDIMScheduler(**LDM_DDIM_SETTINGS)
    pipe = diffusers.LDMTextToImagePipeline(
        vqvae=vae, bert=bert, tokenizer=tokenizer, unet=unet, scheduler=scheduler
    )
    pipe.set_progress_bar_config(disable=True)
    pipe.save_pretrained(str(folder / "pipe"))
    return pipe, folder / "pipe"


def _load(folder: Path) -> DiffusionPipeline:
    return DiffusionPipeline.from_pretrained(folder)


def _ours(folder: Path) -> LDMTextToImagePipeline:
    pipe = _load(folder)
    assert isinstance(pipe, LDMTextToImagePipeline)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_text2img_parity(text2img) -> None:
    ref, folder = text2img
    index = json.loads((folder / "model_index.json").read_text())
    assert index["bert"] == ["latent_diffusion", "LDMBertModel"]
    assert index["tokenizer"] == ["transformers", "BertTokenizer"]
    ours = _ours(folder)
    assert type(ours.vqvae).__name__ == "AutoencoderKL"
    kwargs = dict(guidance_scale=6.0, eta=0.0, num_inference_steps=10, output_type="np")
    expected = ref(PROMPTS, generator=torch.Generator().manual_seed(0), **kwargs).images
    got = ours(PROMPTS, generator=torch.Generator().manual_seed(0), **kwargs).images
    assert got.shape == expected.shape == (2, 64, 64, 3)
    err = np.abs(got - expected).max()
    assert err < 1e-4, err
    # Without guidance too (one UNet batch of B).
    kwargs["guidance_scale"] = 1.0
    expected = ref(PROMPTS[:1], generator=torch.Generator().manual_seed(1), **kwargs).images
    got = ours(PROMPTS[:1], generator=torch.Generator().manual_seed(1), **kwargs).images
    assert np.abs(got - expected).max() < 1e-4


def test_seed_call_is_reproducible_whatever_the_global_rng(text2img) -> None:
    _, folder = text2img
    ldm = _ours(folder)

    def seed_call(seed: int, **kwargs: Any) -> Any:
        generator = torch.Generator().manual_seed(seed)
        return ldm(
            ["a red circle"], generator=generator, eta=0.3, guidance_scale=6.0, **kwargs
        ).images

    outs = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        outs.append(seed_call(42, num_inference_steps=5, output_type="np"))
    assert np.array_equal(outs[0], outs[1])
    other = seed_call(43, num_inference_steps=5, output_type="np")
    assert not np.array_equal(outs[0], other)
    # The seed's call shape: a list prompt, PIL output by default.
    pil = seed_call(0, num_inference_steps=2)
    assert len(pil) == 1 and pil[0].size == (64, 64)


def test_one_batched_unet_call_per_step_and_options(text2img) -> None:
    _, folder = text2img
    ldm = _ours(folder)
    calls: list[int] = []
    handle = ldm.unet.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    steps: list[int] = []
    try:
        out = ldm(
            "a red circle",
            negative_prompt="blue",
            num_images_per_prompt=2,
            guidance_scale=3.0,
            num_inference_steps=4,
            generator=torch.Generator().manual_seed(0),
            output_type="pt",
            callback=lambda i, t, x: steps.append(i),
            height=32,
            width=48,
        ).images
    finally:
        handle.remove()
    assert calls == [4] * 4 and steps == [0, 1, 2, 3]
    assert out.shape == (2, 3, 32, 48)
    with pytest.raises(ValueError):
        ldm("x", height=30)
    latents = torch.randn(1, 4, 8, 8)
    a = ldm("a", latents=latents, num_inference_steps=2, output_type="np").images
    b = ldm("a", latents=latents.clone(), num_inference_steps=2, output_type="np").images
    assert np.array_equal(a, b)


def test_scheduler_swap_and_round_trip(text2img, tmp_path: Path) -> None:
    _, folder = text2img
    ldm = _ours(folder)
    ddpm_cls = registry.scheduler("DDPMScheduler")
    ldm.scheduler = ddpm_cls.from_config(ldm.scheduler.config)
    images = ldm(
        "a square",
        num_inference_steps=3,
        generator=torch.Generator().manual_seed(0),
        guidance_scale=2.0,
        output_type="np",
    ).images
    assert images.shape == (1, 64, 64, 3) and np.isfinite(images).all()
    ldm.scheduler = registry.scheduler("DDIMScheduler").from_config(ldm.scheduler.config)
    ldm.save_pretrained(tmp_path / "saved")
    index = json.loads((tmp_path / "saved" / "model_index.json").read_text())
    assert index["bert"] == ["latent_diffusion", "LDMBertModel"]
    assert index["tokenizer"] == ["transformers", "BertTokenizer"]
    again = _ours(tmp_path / "saved")
    kwargs = dict(num_inference_steps=3, guidance_scale=6.0, output_type="np")
    a = ldm(PROMPTS, generator=torch.Generator().manual_seed(3), **kwargs).images
    b = again(PROMPTS, generator=torch.Generator().manual_seed(3), **kwargs).images
    assert np.abs(a - b).max() < 1e-6
    # The folder written here loads in diffusers and generates the same images.
    diffusers = pytest.importorskip("diffusers")
    ref = diffusers.LDMTextToImagePipeline.from_pretrained(str(tmp_path / "saved"))
    ref.set_progress_bar_config(disable=True)
    c = ref(PROMPTS, generator=torch.Generator().manual_seed(3), **kwargs).images
    assert np.abs(a - c).max() < 1e-4


@pytest.fixture(scope="module")
def uncond(tmp_path_factory: pytest.TempPathFactory):
    diffusers = pytest.importorskip("diffusers")
    folder = tmp_path_factory.mktemp("uncond")
    torch.manual_seed(0)
    vq = diffusers.VQModel(
        **tiny_autoencoder((8, 16, 16), sample_size=32, latent_channels=3),
        num_vq_embeddings=64,
        scaling_factor=1.0,
    ).eval()
    unet = diffusers.UNet2DModel(
        sample_size=8,
        in_channels=3,
        out_channels=3,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=8,
        norm_num_groups=8,
        flip_sin_to_cos=True,
        freq_shift=0,
    ).eval()
    perturb(vq, 5)
    perturb(unet, 6)
    scheduler = diffusers.DDIMScheduler(
        beta_start=0.0015, beta_end=0.0195, beta_schedule="scaled_linear", clip_sample=False
    )
    pipe = diffusers.LDMPipeline(vqvae=vq, unet=unet, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    pipe.save_pretrained(str(folder / "pipe"))
    return pipe, folder / "pipe"


def test_uncond_parity(uncond) -> None:
    ref, folder = uncond
    ours = _load(folder)
    assert isinstance(ours, LDMPipeline)
    ours.set_progress_bar_config(disable=True)
    kwargs = dict(batch_size=2, eta=0.0, num_inference_steps=10, output_type="np")
    expected = ref(generator=torch.Generator().manual_seed(0), **kwargs).images
    got = ours(generator=torch.Generator().manual_seed(0), **kwargs).images
    assert got.shape == expected.shape == (2, 32, 32, 3)
    err = np.abs(got - expected).max()
    assert err < 1e-4, err
    outs = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        outs.append(
            ours(
                generator=torch.Generator().manual_seed(7),
                eta=0.5,
                num_inference_steps=3,
                output_type="np",
            ).images
        )
    assert np.array_equal(outs[0], outs[1])


@pytest.mark.slow
def test_seed_example(tmp_path: Path) -> None:
    """The seed's call (docs/examples/seed_latent_diffusion.py) run as users would run it, on a
    small pipeline folder built and saved with this library."""
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *SEED_WORDS]) + "\n")
    torch.manual_seed(0)
    pipe = LDMTextToImagePipeline(
        vqvae=AutoencoderKL(**tiny_autoencoder((8, 16), sample_size=16)),
        bert=LDMBertModel(
            vocab_size=len(SEED_WORDS) + 5,
            encoder_layers=1,
            encoder_ffn_dim=32,
            encoder_attention_heads=2,
            head_dim=8,
            d_model=16,
        ),
        tokenizer=BertTokenizer.from_pretrained(tmp_path),
        unet=UNet2DConditionModel(**tiny_unet(cross_attention_dim=16, block_out_channels=(16, 32))),
        scheduler=DDIMScheduler(**LDM_DDIM_SETTINGS),
    )
    pipe.save_pretrained(tmp_path / "ldm")
    out = tmp_path / "test.png"
    result = subprocess.run(
        [sys.executable, str(SEED_EXAMPLE), str(tmp_path / "ldm"), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with PIL.Image.open(out) as image:
        assert image.size == (16, 16)
