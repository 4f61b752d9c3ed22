"""The seed's pipeline example: load a whole DDPM pipeline and run it in one call.

Usage: python seed_pipeline.py [PIPELINE_FOLDER_OR_REPO] [OUT.png]
(default: the ddpm plugin's embedded demo weights; e.g. "google/ddpm-bedroom-256" from the Hub)
"""

import sys

import numpy as np
import PIL.Image
import torch

from diffusers_hub import DiffusionPipeline, registry

model_id = sys.argv[1] if len(sys.argv) > 1 else registry.demo_checkpoint("ddpm")
out = sys.argv[2] if len(sys.argv) > 2 else "test.png"

# load model and scheduler
ddpm = DiffusionPipeline.from_pretrained(model_id)

# run pipeline in inference (sample random noise and denoise)
image = ddpm(generator=torch.manual_seed(0), output_type="pt").images  # (B, C, H, W) in [0, 1]

# process image to PIL
image_processed = image.cpu().permute(0, 2, 3, 1)
image_processed = (image_processed * 255.0).round()
image_processed = image_processed.numpy().astype(np.uint8)
image_pil = PIL.Image.fromarray(
    image_processed[0].squeeze(-1) if image.shape[1] == 1 else image_processed[0]
)

# save image
image_pil.save(out)
