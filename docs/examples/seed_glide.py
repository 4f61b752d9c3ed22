"""The seed's GLIDE example: a whole text-to-image pipeline (base + upsampler) in one call.

Usage: python seed_glide.py [PIPELINE_FOLDER] [OUT.png] [PROMPT] [BASE_STEPS]
(default: the GLIDE plugin's embedded demo; a folder from `diffusers-hub convert glide` holds the
released 64 -> 256 px models)
"""

import sys

import torch

from diffusers_hub import DiffusionPipeline, registry

model_id = sys.argv[1] if len(sys.argv) > 1 else registry.demo_checkpoint("glide")
out = sys.argv[2] if len(sys.argv) > 2 else "test.png"

glide = DiffusionPipeline.from_pretrained(model_id)

generator = torch.Generator().manual_seed(0)
# the demo knows the captions of its shapes data; the released models take any prompt
prompt = sys.argv[3] if len(sys.argv) > 3 else "a red circle"
steps = int(sys.argv[4]) if len(sys.argv) > 4 else 100
image = glide(
    prompt,
    guidance_scale=3.0,
    num_inference_steps=steps,  # the base model's respacing ("100", "fast27", "ddim50", ...)
    upsample=True,  # False stops at the base resolution
    generator=generator,
).images[0]

image.save(out)
