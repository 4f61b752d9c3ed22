"""The seed's DDPM example: load a scheduler and a UNet, sample noise, denoise step by step.

Usage: python seed_ddpm_loop.py [MODEL_FOLDER_OR_REPO] [OUT.png]
(default: the ddpm plugin's embedded demo weights; e.g. "google/ddpm-church-256" from the Hub)
"""

import sys

import numpy as np
import PIL.Image
import torch
import tqdm

from diffusers_hub import registry

model_id = sys.argv[1] if len(sys.argv) > 1 else registry.demo_checkpoint("ddpm")
out = sys.argv[2] if len(sys.argv) > 2 else "test.png"

generator = torch.manual_seed(0)
torch_device = "cuda" if torch.cuda.is_available() else "cpu"

# 1. Load models
noise_scheduler = registry.scheduler("DDPMScheduler").from_config(model_id)
unet = registry.model("UNet2DModel").from_pretrained(model_id).to(torch_device)

# 2. Sample gaussian noise
image = torch.randn(
    (1, unet.in_channels, unet.resolution, unet.resolution),
    generator=generator,
)
image = image.to(torch_device)

# 3. Denoise: every training timestep, from T-1 down to 0
for t in tqdm.tqdm(noise_scheduler.timesteps):
    # predict the noise residual
    with torch.no_grad():
        residual = unet(image, t).sample

    # x_t -> x_t-1: the posterior mean plus sampled variance (the seed's get_variance step)
    image = noise_scheduler.step(residual, t, image, generator=generator).prev_sample

# 5. process image to PIL
image_processed = image.clamp(-1, 1).cpu().permute(0, 2, 3, 1)
image_processed = (image_processed + 1.0) * 127.5
image_processed = image_processed.numpy().astype(np.uint8)
image_pil = PIL.Image.fromarray(
    image_processed[0].squeeze(-1) if unet.in_channels == 1 else image_processed[0]
)

# 6. save image
image_pil.save(out)
