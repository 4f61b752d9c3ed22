"""Activation functions looked up by the names that diffusers-format configs use."""

from __future__ import annotations

from torch import nn

__all__ = ["ACTIVATIONS", "get_activation"]

#: Config spelling -> module class. ``swish`` is the old name of SiLU (x * sigmoid(x)).
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "swish": nn.SiLU,
    "silu": nn.SiLU,
    "mish": nn.Mish,
    "gelu": nn.GELU,
    "relu": nn.ReLU,
}


def get_activation(name: str) -> nn.Module:
    """Build the activation module named ``name`` (case-insensitive).

    Args:
        name: one of ``swish``, ``silu``, ``mish``, ``gelu``, ``relu``.

    Raises:
        ValueError: the name is unknown; the message lists the known names.

    Example:
        >>> get_activation("swish")
        SiLU()
    """
    key = name.lower()
    if key not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation function {name!r}; allowed: {', '.join(sorted(ACTIVATIONS))}"
        )
    return ACTIVATIONS[key]()
