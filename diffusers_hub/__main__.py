"""``python -m diffusers_hub``: the ``diffusers-hub`` command line."""

from __future__ import annotations

from diffusers_hub.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
