"""``diffusers-hub train latent-diffusion``: a small text-to-image latent diffusion model.

Two stages, on the procedurally drawn captioned shapes (``diffusers_hub_latent_diffusion.shapes``):

1. a KL autoencoder (``AutoencoderKL``) learns to reconstruct the images: L1 + MSE reconstruction
   loss plus a small KL term towards N(0, I) (Rombach et al. 2021, Sec. 3.1); the latent scaling
   factor is then set to 1 / std of the training latents, so the diffusion model sees unit-variance
   latents;
2. a text encoder (``LDMBertModel``, from scratch) and a cross-attention UNet
   (``UNet2DConditionModel``) learn, jointly, to predict the noise in the frozen autoencoder's
   scaled latents given the caption (a ``diffusers_hub.training.TrainCommand``: the core
   noise-prediction loop with AdamW, EMA, checkpoints, exact resume, ``torchrun``). 10% of the captions are replaced by the empty
   prompt, which teaches the unconditional model that classifier-free guidance needs
   (Ho & Salimans, arXiv:2207.12598).

Example:
    diffusers-hub train latent-diffusion --out ldm-shapes --ae-steps 1500 --steps 6000

The output folder holds the final ``LDMTextToImagePipeline`` (``model_index.json``, ``vqvae/``,
``bert/``, ``tokenizer/``, ``unet/``, ``scheduler/``; EMA weights of the text encoder and the
UNet), the stage-1 ``autoencoder/`` folder, ``checkpoints/`` of stage 2 and ``train_log.jsonl``.
``--resume`` continues stage 2 from its newest checkpoint (stage 1 is reused from
``autoencoder/``).

References:
    Rombach et al., High-Resolution Image Synthesis with Latent Diffusion Models, arXiv:2112.10752.
    Ho, Jain, Abbeel, arXiv:2006.11239 (Algorithm 1, eq. 14).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from diffusers_hub.training import TrainCommand, TrainJob, comma_list
from diffusers_hub.training.distributed import DistributedContext, barrier

__all__ = [
    "COMMAND",
    "LDM_DDIM_SETTINGS",
    "CaptionedLatents",
    "TextConditionedDenoiser",
    "build_parser",
    "build_tokenizer",
    "ldm_scheduler",
    "main",
    "train_autoencoder",
]

logger = logging.getLogger(__name__)

#: Special tokens of the BERT vocabulary, in id order (``[PAD]`` is 0).
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
#: Context length of LDMBert and of the pipeline's tokenizer call.
MAX_TOKENS = 77


# -- components -------------------------------------------------------------------------------------


def build_tokenizer() -> Any:
    """A ``BertTokenizer`` whose vocabulary is the special tokens plus every caption word."""
    from diffusers_hub_latent_diffusion.shapes import vocabulary
    from diffusers_hub_latent_diffusion.tokenizer import BertTokenizer

    tokens = [*SPECIAL_TOKENS, *vocabulary()]
    return BertTokenizer({token: i for i, token in enumerate(tokens)}, model_max_length=MAX_TOKENS)


#: The DDIM settings of CompVis/ldm-text2im-large-256 (1000 training steps, the default).
LDM_DDIM_SETTINGS: dict[str, Any] = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
}


def ldm_scheduler() -> Any:
    """DDIM with the latent-diffusion settings (scaled_linear 0.00085-0.012, offset 1)."""
    from diffusers_hub_ddim.scheduler import DDIMScheduler

    return DDIMScheduler(num_train_timesteps=1000, **LDM_DDIM_SETTINGS)


class TextConditionedDenoiser(nn.Module):
    """The text encoder and the UNet as one module, so one optimizer and one EMA train both.

    Args:
        bert: the ``LDMBertModel``.
        unet: the ``UNet2DConditionModel``.
    """

    def __init__(self, bert: nn.Module, unet: nn.Module) -> None:
        super().__init__()
        self.bert = bert
        self.unet = unet

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Noise prediction (B, C, h, w) for latents (B, C, h, w), timesteps (B,), ids (B, 77)."""
        context = self.bert(input_ids)[0]
        out: torch.Tensor = self.unet(x_t, t, encoder_hidden_states=context).sample
        return out


class CaptionedLatents(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Scaled autoencoder latents with their token ids.

    Each item draws a fresh posterior sample ``scale * (mean + std * eps)`` (global torch RNG,
    which the training loop seeds and checkpoints).

    Args:
        mean: (N, C, h, w) posterior means.
        std: (N, C, h, w) posterior standard deviations.
        input_ids: (N, 77) token ids of the captions.
        scale: the autoencoder's ``scaling_factor``.
    """

    def __init__(
        self, mean: torch.Tensor, std: torch.Tensor, input_ids: torch.Tensor, scale: float
    ) -> None:
        if not (mean.shape == std.shape and mean.shape[0] == input_ids.shape[0]):
            raise ValueError(
                f"mismatched shapes: mean {tuple(mean.shape)}, std {tuple(std.shape)}, "
                f"ids {tuple(input_ids.shape)}"
            )
        self.mean, self.std, self.input_ids, self.scale = mean, std, input_ids, scale

    def __len__(self) -> int:
        return int(self.mean.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.mean[index] + self.std[index] * torch.randn_like(self.mean[index])
        return z * self.scale, self.input_ids[index]


# -- stage 1: the autoencoder -------------------------------------------------------------------------


def _images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0).contiguous()


def train_autoencoder(
    vae: Any,
    images: torch.Tensor,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    kl_weight: float,
    seed: int,
    log_every: int = 100,
) -> list[tuple[int, float, float]]:
    """Train ``vae`` in place on images in [-1, 1].

    Loss per batch: ``|x - D(z)|_1 + |x - D(z)|_2^2 + kl_weight * KL(q(z|x) || N(0, I))`` with
    ``z ~ q(z|x)`` (reparameterised); the KL is summed over latent elements and averaged over the
    batch, the reconstruction terms averaged over pixels.

    Args:
        vae: an ``AutoencoderKL``.
        images: (N, 3, H, W) training images in [-1, 1].
        steps: optimizer steps.
        batch_size: images per step.
        lr: AdamW learning rate (cosine decay to 10% over the run).
        kl_weight: weight of the KL term.
        seed: seed of the batches and the posterior noise.
        log_every: log every this many steps.

    Returns:
        ``(step, reconstruction MSE, KL)`` logged every ``log_every`` steps.

    References:
        Rombach et al. 2021, arXiv:2112.10752, Sec. 3.1 and appendix G (KL-reg. autoencoder);
        Kingma & Welling, arXiv:1312.6114 (eq. 10, the Gaussian KL).
    """
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    lr_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=lr * 0.1)
    vae.train()
    history: list[tuple[int, float, float]] = []
    mse_sum = kl_sum = 0.0
    count = 0
    start = time.perf_counter()
    for step in range(1, steps + 1):
        index = torch.randint(0, images.shape[0], (batch_size,), generator=generator)
        x = images[index]
        dist = vae.encode(x).latent_dist
        recon = vae.decode(dist.sample(generator)).sample
        mse = (recon - x).pow(2).mean()
        kl = dist.kl().mean()
        loss = (recon - x).abs().mean() + mse + kl_weight * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        lr_scheduler.step()
        mse_sum += mse.item()
        kl_sum += kl.item()
        count += 1
        if step % log_every == 0 or step == steps:
            history.append((step, mse_sum / count, kl_sum / count))
            logger.info(
                "autoencoder step %d/%d: mse %.5f kl %.1f (%.1f s)",
                step,
                steps,
                mse_sum / count,
                kl_sum / count,
                time.perf_counter() - start,
            )
            mse_sum = kl_sum = 0.0
            count = 0
    vae.eval()
    return history


@torch.no_grad()
def encode_latents(
    vae: Any, images: torch.Tensor, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means and standard deviations (N, C, h, w) of the images."""
    means, stds = [], []
    for part in torch.split(images, batch_size):
        dist = vae.encode(part).latent_dist
        means.append(dist.mean)
        stds.append(dist.std)
    return torch.cat(means), torch.cat(stds)


# -- the command ----------------------------------------------------------------------------------------


def _add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``train latent-diffusion`` besides the common training ones."""
    g = p.add_argument_group("data")
    g.add_argument("--num-images", type=int, default=20000, help="training images to draw")
    g.add_argument("--resolution", type=int, default=32)
    g.add_argument("--data-seed", type=int, default=0, help="seed of the drawn data set")

    g = p.add_argument_group("stage 1: autoencoder")
    g.add_argument(
        "--autoencoder",
        type=Path,
        default=None,
        help="reuse a trained AutoencoderKL folder (skips stage 1)",
    )
    g.add_argument("--ae-block-out-channels", type=comma_list(int), default=(16, 32, 64))
    g.add_argument("--ae-layers-per-block", type=int, default=1)
    g.add_argument("--latent-channels", type=int, default=4)
    g.add_argument("--ae-norm-num-groups", type=int, default=8)
    g.add_argument("--ae-steps", type=int, default=1500)
    g.add_argument("--ae-batch-size", type=int, default=32)
    g.add_argument("--ae-lr", type=float, default=2e-3)
    g.add_argument("--kl-weight", type=float, default=1e-5)

    g = p.add_argument_group("stage 2: text encoder and UNet (the common options below)")
    g.add_argument("--unet-block-out-channels", type=comma_list(int), default=(32, 64))
    g.add_argument("--unet-layers-per-block", type=int, default=1)
    g.add_argument("--unet-heads", type=int, default=4, help="attention heads per block")
    g.add_argument("--unet-norm-num-groups", type=int, default=8)
    g.add_argument("--cross-attention-dim", type=int, default=64, help="= LDMBert's d_model")
    g.add_argument("--bert-layers", type=int, default=2)
    g.add_argument("--bert-heads", type=int, default=4)
    g.add_argument("--bert-ffn-dim", type=int, default=256)
    g.add_argument("--caption-dropout", type=float, default=0.1, help="P(empty prompt)")


def _build_autoencoder(args: argparse.Namespace) -> Any:
    from diffusers_hub_latent_diffusion.autoencoder import AutoencoderKL

    levels = len(args.ae_block_out_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=args.ae_block_out_channels,
        layers_per_block=args.ae_layers_per_block,
        latent_channels=args.latent_channels,
        norm_num_groups=args.ae_norm_num_groups,
        sample_size=args.resolution,
        scaling_factor=1.0,
    )


def _with_scaling_factor(vae: Any, scale: float) -> Any:
    """A copy of ``vae`` whose config records ``scaling_factor = scale``."""
    from diffusers_hub_latent_diffusion.autoencoder import AutoencoderKL

    config = {**vae.config.to_dict(), "scaling_factor": scale}
    scaled = AutoencoderKL(config)
    scaled.load_state_dict(vae.state_dict())
    return scaled.eval()


def _stage_one(args: argparse.Namespace, images: torch.Tensor, ctx: DistributedContext) -> Any:
    """The frozen autoencoder: given, reused from ``--out/autoencoder`` on resume, or trained.

    Rank 0 trains and saves it; every rank then loads the saved folder, so all hold the same one.
    """
    from diffusers_hub_latent_diffusion.autoencoder import AutoencoderKL

    out: Path = args.out
    ae_folder = out / "autoencoder"
    given = args.autoencoder
    if given is None and args.resume is not None and (ae_folder / "config.json").is_file():
        given = ae_folder
    if given is None:
        if ctx.is_main:
            started = time.perf_counter()
            torch.manual_seed(args.seed)
            vae = _build_autoencoder(args)
            history = train_autoencoder(
                vae,
                images,
                steps=args.ae_steps,
                batch_size=args.ae_batch_size,
                lr=args.ae_lr,
                kl_weight=args.kl_weight,
                seed=args.seed,
                log_every=args.log_every,
            )
            mean, _ = encode_latents(vae, images)
            scale = float(1.0 / mean.std())
            _with_scaling_factor(vae, scale).save_pretrained(ae_folder)
            record = {"stage": "autoencoder", "history": history, "scaling_factor": scale}
            with (out / "train_log.jsonl").open("a") as fh:
                fh.write(json.dumps(record) + "\n")
            logger.info(
                "stage 1 done in %.0f s: scaling_factor %.4f, saved %s",
                time.perf_counter() - started,
                scale,
                ae_folder,
            )
        barrier(ctx)
        given = ae_folder
    source = given / "vqvae" if (given / "vqvae" / "config.json").is_file() else given
    logger.info("using the autoencoder in %s", source)
    return AutoencoderKL.from_pretrained(source).eval().requires_grad_(False)


def _prepare(args: argparse.Namespace, ctx: DistributedContext) -> TrainJob:
    """Stage 1 (the autoencoder), then the stage-2 job: LDMBert + UNet on the scaled latents."""
    from diffusers_hub_latent_diffusion.ldmbert import LDMBertModel
    from diffusers_hub_latent_diffusion.pipeline_text2img import LDMTextToImagePipeline
    from diffusers_hub_latent_diffusion.shapes import make_dataset
    from diffusers_hub_latent_diffusion.unet_2d_condition import UNet2DConditionModel

    if args.resolution % 2 ** (len(args.ae_block_out_channels) - 1):
        raise SystemExit("--resolution must be divisible by the autoencoder's downsampling factor")
    d_model = args.cross_attention_dim
    if d_model % args.bert_heads:
        raise SystemExit("--cross-attention-dim must be divisible by --bert-heads")
    args.out.mkdir(parents=True, exist_ok=True)
    images_np, captions, _ = make_dataset(args.num_images, args.data_seed, args.resolution)
    images = _images_to_tensor(images_np)
    logger.info("drew %d captioned %dx%d images", len(captions), args.resolution, args.resolution)
    vae = _stage_one(args, images, ctx)
    mean, std = encode_latents(vae, images)

    tokenizer = build_tokenizer()
    input_ids = tokenizer(captions, max_length=MAX_TOKENS, return_tensors="pt").input_ids
    empty_ids = tokenizer([""], max_length=MAX_TOKENS, return_tensors="pt").input_ids
    bert_config: dict[str, Any] = {
        "vocab_size": len(tokenizer.get_vocab()),
        "max_position_embeddings": MAX_TOKENS,
        "encoder_layers": args.bert_layers,
        "encoder_ffn_dim": args.bert_ffn_dim,
        "encoder_attention_heads": args.bert_heads,
        "head_dim": d_model // args.bert_heads,
        "d_model": d_model,
        "dropout": 0.0,
    }
    levels = len(args.unet_block_out_channels)
    unet_config: dict[str, Any] = {
        "sample_size": args.resolution // vae.scale_factor_spatial,
        "in_channels": args.latent_channels,
        "out_channels": args.latent_channels,
        "down_block_types": ("CrossAttnDownBlock2D",) * levels,
        "up_block_types": ("CrossAttnUpBlock2D",) * levels,
        "block_out_channels": args.unet_block_out_channels,
        "layers_per_block": args.unet_layers_per_block,
        "attention_head_dim": args.unet_heads,
        "norm_num_groups": args.unet_norm_num_groups,
        "cross_attention_dim": d_model,
    }
    # Validate before the run starts.
    LDMBertModel.config_class.model_validate(bert_config)
    UNet2DConditionModel.config_class.model_validate(unet_config)
    dropout = args.caption_dropout

    def forward(
        model: nn.Module, x_t: torch.Tensor, t: torch.Tensor, ids: torch.Tensor | None
    ) -> torch.Tensor:
        if ids is None:
            raise TypeError("the latent data set yields (latents, token ids) pairs")
        # Caption dropout for classifier-free guidance (global RNG: seeded and checkpointed).
        drop = torch.rand(ids.shape[0], device=ids.device) < dropout
        ids = torch.where(drop[:, None], empty_ids.to(ids.device), ids)
        out: torch.Tensor = model(x_t, t, ids)
        return out

    def pipeline(model: nn.Module, scheduler: Any) -> LDMTextToImagePipeline:
        assert isinstance(model, TextConditionedDenoiser)
        return LDMTextToImagePipeline(
            vqvae=vae,
            bert=model.bert,  # type: ignore[arg-type]
            tokenizer=tokenizer,
            unet=model.unet,  # type: ignore[arg-type]
            scheduler=scheduler,
        )

    return TrainJob(
        model=lambda: TextConditionedDenoiser(
            LDMBertModel(bert_config), UNet2DConditionModel(unet_config)
        ),
        dataset=CaptionedLatents(mean, std, input_ids, float(vae.config.scaling_factor)),
        scheduler=ldm_scheduler(),
        export=pipeline,
        forward=forward,
        saved="LDMTextToImagePipeline",
    )


COMMAND = TrainCommand(
    name="latent-diffusion",
    description=(
        "Train a small text-to-image latent diffusion model (autoencoder, then LDMBert + "
        "UNet) on the builtin captioned shapes and save an LDMTextToImagePipeline folder."
    ),
    add_arguments=_add_arguments,
    prepare=_prepare,
    defaults={
        "steps": 6000,
        "batch_size": 64,
        "lr": 1e-3,
        "lr_warmup_steps": 200,
        "ema_decay": 0.999,
        "checkpoint_every": 1000,
        "log_every": 100,
    },
)


#: The ``train latent-diffusion`` parser and entry point (its ``diffusers_hub_trainers`` hook target).
build_parser, main = COMMAND.build_parser, COMMAND.main

if __name__ == "__main__":
    raise SystemExit(main())
