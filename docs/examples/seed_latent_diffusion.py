"""The seed's text-to-image example with latent diffusion.

Usage: python seed_latent_diffusion.py [PIPELINE_FOLDER_OR_REPO] [OUT.png]
(default: "CompVis/ldm-text2im-large-256" from the Hub)
"""

import sys

import numpy as np
import PIL.Image
import torch

from diffusers_hub import DiffusionPipeline

model_id = sys.argv[1] if len(sys.argv) > 1 else "CompVis/ldm-text2im-large-256"
out = sys.argv[2] if len(sys.argv) > 2 else "test.png"

ldm = DiffusionPipeline.from_pretrained(model_id)

generator = torch.Generator()
generator = generator.manual_seed(6694729458485568)

prompt = "A painting of a squirrel eating a burger"
image = ldm(
    [prompt],
    generator=generator,
    eta=0.3,
    guidance_scale=6.0,
    num_inference_steps=50,
    output_type="pt",
).images

image_processed = image.cpu().permute(0, 2, 3, 1)
image_processed = image_processed * 255.0
image_processed = image_processed.numpy().astype(np.uint8)
image_pil = PIL.Image.fromarray(image_processed[0])

# save image
image_pil.save(out)
