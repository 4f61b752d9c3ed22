"""Regenerate ``diffusers_hub_ddpm/data/digits.npz`` from scikit-learn's copy of the UCI digits.

The file holds the 1,797 8x8 handwritten digits that scikit-learn ships (``load_digits``):
``images`` (N, 8, 8) uint8 in [0, 16] and ``labels`` (N,) uint8 in [0, 9]. scikit-learn is needed
only to run this script (it is a dev dependency); the library reads the ``.npz`` with numpy.

Usage:
    python plugins/ddpm/scripts/make_digits.py [OUTPUT]

References:
    E. Alpaydin, C. Kaynak, "Optical Recognition of Handwritten Digits", UCI Machine Learning
    Repository (1998), as distributed by scikit-learn (BSD-3-Clause).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "diffusers_hub_ddpm" / "data" / "digits.npz"


def main(argv: list[str] | None = None) -> int:
    """Write the digits file; returns the process exit code."""
    from sklearn.datasets import load_digits

    args = sys.argv[1:] if argv is None else argv
    output = Path(args[0]) if args else DEFAULT_OUTPUT
    digits = load_digits()
    images = np.asarray(digits.images, dtype=np.uint8)  # (N, 8, 8), values 0..16
    labels = np.asarray(digits.target, dtype=np.uint8)  # (N,), values 0..9
    if images.max() > 16 or labels.max() > 9:
        raise ValueError("unexpected value range in sklearn's digits")
    output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(output, images=images, labels=labels)
    print(f"wrote {output}: images {images.shape} labels {labels.shape}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
