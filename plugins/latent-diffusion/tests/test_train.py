"""``diffusers-hub train latent-diffusion``: a few steps end to end, and its parts."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers_hub_latent_diffusion import shapes
from diffusers_hub_latent_diffusion.train import (
    CaptionedLatents,
    build_tokenizer,
    ldm_scheduler,
    main,
)

TINY = [
    "--num-images", "48",
    "--ae-block-out-channels", "8,16",
    "--ae-norm-num-groups", "4",
    "--ae-steps", "3",
    "--ae-batch-size", "8",
    "--unet-block-out-channels", "8,16",
    "--unet-norm-num-groups", "4",
    "--unet-heads", "2",
    "--cross-attention-dim", "16",
    "--bert-layers", "1",
    "--bert-heads", "2",
    "--bert-ffn-dim", "32",
    "--steps", "3",
    "--batch-size", "8",
    "--lr-warmup-steps", "0",
    "--log-every", "1",
    "--checkpoint-every", "0",
    "--threads", "1",
    "--no-progress",
]  # fmt: skip


def test_tokenizer_knows_every_caption_word() -> None:
    tokenizer = build_tokenizer()
    vocab = tokenizer.get_vocab()
    assert [vocab[t] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [0, 1, 2, 3, 4]
    _, captions, _ = shapes.make_dataset(200, seed=0)
    ids = tokenizer(captions + list(shapes.held_out_prompts()), return_tensors="pt").input_ids
    assert ids.shape == (250, 77)
    assert not (ids == vocab["[UNK]"]).any()
    assert (ids[:, 0] == vocab["[CLS]"]).all()


def test_ldm_scheduler_has_the_latent_diffusion_settings() -> None:
    config = ldm_scheduler().config
    assert (config.beta_schedule, config.beta_start, config.beta_end) == (
        "scaled_linear",
        0.00085,
        0.012,
    )
    assert config.steps_offset == 1 and not config.set_alpha_to_one and not config.clip_sample


def test_captioned_latents_scale_the_posterior_samples() -> None:
    mean = torch.full((3, 4, 2, 2), 2.0)
    data = CaptionedLatents(mean, torch.zeros_like(mean), torch.ones(3, 77, dtype=torch.long), 0.5)
    latent, ids = data[1]
    assert len(data) == 3 and torch.equal(latent, torch.ones(4, 2, 2)) and ids.shape == (77,)


def test_train_writes_a_loadable_pipeline(tmp_path: Path) -> None:
    from diffusers_hub import DiffusionPipeline

    out = tmp_path / "run"
    assert main([*TINY, "--out", str(out)]) == 0
    index = json.loads((out / "model_index.json").read_text())
    assert index["_class_name"] == "LDMTextToImagePipeline"
    assert index["bert"] == ["latent_diffusion", "LDMBertModel"]
    assert index["tokenizer"] == ["transformers", "BertTokenizer"]
    assert index["vqvae"] == ["diffusers", "AutoencoderKL"]
    assert index["scheduler"] == ["diffusers", "DDIMScheduler"]
    assert (out / "tokenizer" / "vocab.txt").is_file()
    assert (out / "autoencoder" / "config.json").is_file()
    pipe = DiffusionPipeline.from_pretrained(out)
    assert type(pipe).__name__ == "LDMTextToImagePipeline"
    # The stage-1 scaling factor (1 / std of the latents) is recorded in the vqvae config.
    assert pipe.vqvae.config.scaling_factor != 1.0
    pipe.set_progress_bar_config(disable=True)
    images = pipe(
        "a red circle",
        guidance_scale=6.0,
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    ).images
    assert images.shape == (1, 32, 32, 3)

    # Stage 2 resumes with the saved autoencoder (stage 1 is not rerun).
    log = (out / "train_log.jsonl").read_text().splitlines()
    assert sum('"stage": "autoencoder"' in line for line in log) == 1
    assert main([*TINY, "--steps", "4", "--out", str(out), "--resume"]) == 0
    log = (out / "train_log.jsonl").read_text().splitlines()
    assert sum('"stage": "autoencoder"' in line for line in log) == 1
    assert json.loads(log[-1])["step"] == 4


def test_the_trainer_is_registered() -> None:
    from diffusers_hub import registry

    value = registry.hook_mapping_value("diffusers_hub_trainers", "latent-diffusion", "trainer")
    assert value == "diffusers_hub_latent_diffusion.train:main"
