"""Time one sampling step of the release-size GLIDE base UNet on CPU (random weights).

One guided step of one image is one UNet call on a batch of 2 ([conditional, unconditional]) at
64 px with 128 text tokens. The text transformer runs inside the call (the pipeline runs it once
per prompt; ``--cached-text`` times the UNet alone, as in the pipeline's loop).

Usage:
    python plugins/glide/scripts/benchmark_base_step.py [--repeats 3] [--threads N] [--cached-text]
"""

from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--cached-text", action="store_true", help="encode the text once")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from diffusers_hub_glide.unet import GLIDEUNetModel

    torch.manual_seed(0)
    model = GLIDEUNetModel().eval()  # the release's base config, 385,030,726 parameters
    x = torch.randn(2, 3, 64, 64)
    tokens = torch.randint(0, 50256, (2, 128))
    mask = torch.arange(128)[None].expand(2, -1) < torch.tensor([[12], [0]])
    t = torch.tensor([500, 500])
    with torch.no_grad():
        text = model.encode_text(tokens, mask) if args.cached_text else None
        kwargs = {"text": text} if text is not None else {"tokens": tokens, "mask": mask}
        model(x, t, **kwargs)  # warm-up
        walls, cpus = [], []
        for _ in range(args.repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            model(x, t, **kwargs)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    print(
        f"GLIDE base UNet ({model.num_parameters():,} parameters), batch 2, 64 px, "
        f"{torch.get_num_threads()} threads: wall {min(walls):.2f} s/step (best of "
        f"{args.repeats}), CPU time {min(cpus):.2f} s/step"
    )


if __name__ == "__main__":
    main()
