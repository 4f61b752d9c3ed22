"""The plugin's example model, a working starting point that you replace with your network.

A small time-conditioned residual convolutional network that predicts the noise of a noisy image
(the epsilon-parameterization of DDPM): sinusoidal timestep embedding -> MLP -> added to every
residual block; GroupNorm, SiLU and 3x3 convolutions. It trains and samples with any diffusers-hub
scheduler, and loads and saves Hub-format folders (``config.json`` +
``diffusion_pytorch_model.safetensors``) through :class:`diffusers_hub.modeling.ModelMixin`.

Rules for model code: every weight lives in the state dict under a stable name (no buffers
outside it: models are built on the meta device and filled from the checkpoint); constant tables
such as the timestep frequencies are computed in ``forward``.

References:
    Ho, Jain and Abbeel 2020, "Denoising Diffusion Probabilistic Models", arXiv:2006.11239.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pydantic
import torch
from diffusers_hub.config import ComponentConfig
from diffusers_hub.modeling import ModelMixin
from diffusers_hub.nn.embeddings import timestep_embedding
from pydantic import Field
from torch import nn

__all__ = [
    "ResidualBlock",
    "{{ class_name }}",
    "{{ class_name }}Config",
    "{{ class_name }}Output",
]


class {{ class_name }}Config(ComponentConfig):
    """The model's config (written to ``config.json``).

    Attributes:
        sample_size: the height and width of the images it is meant for.
        in_channels: channels of the input images.
        out_channels: channels of the prediction.
        hidden_channels: width of the residual blocks.
        num_blocks: number of residual blocks.
        norm_num_groups: groups of the GroupNorm layers (must divide ``hidden_channels``).
        time_embedding_dim: width of the timestep embedding.
    """

    sample_size: int = Field(default=32, ge=1)
    in_channels: int = Field(default=3, ge=1)
    out_channels: int = Field(default=3, ge=1)
    hidden_channels: int = Field(default=64, ge=1)
    num_blocks: int = Field(default=2, ge=1)
    norm_num_groups: int = Field(default=8, ge=1)
    time_embedding_dim: int = Field(default=128, ge=2)

    @pydantic.model_validator(mode="after")
    def _groups_divide_channels(self) -> Any:
        if self.hidden_channels % self.norm_num_groups:
            raise ValueError(
                f"norm_num_groups={self.norm_num_groups} must divide "
                f"hidden_channels={self.hidden_channels}"
            )
        return self


@dataclass
class {{ class_name }}Output:
    """What ``forward`` returns.

    Attributes:
        sample: (B, out_channels, H, W) the prediction.
    """

    sample: torch.Tensor


class ResidualBlock(nn.Module):
    """GroupNorm -> SiLU -> conv, plus the projected time embedding, twice, with a skip.

    Args:
        channels: input and output channels.
        time_dim: width of the time embedding.
        groups: GroupNorm groups.
    """

    def __init__(self, channels: int, time_dim: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.time_proj = nn.Linear(time_dim, channels)
        self.norm2 = nn.GroupNorm(groups, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W), (B, time_dim) -> (B, C, H, W)."""
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        h = h + self.time_proj(temb)[:, :, None, None]
        h = self.conv2(nn.functional.silu(self.norm2(h)))
        return x + h


class {{ class_name }}(ModelMixin):
    """A small time-conditioned residual CNN that predicts the noise of x_t.

    Example:
        >>> import torch
        >>> model = {{ class_name }}(hidden_channels=16, time_embedding_dim=16)
        >>> model(torch.zeros(2, 3, 8, 8), torch.tensor([10, 20])).sample.shape
        torch.Size([2, 3, 8, 8])
    """

    config_class = {{ class_name }}Config
    config: {{ class_name }}Config

    def __init__(
        self,
        config: {{ class_name }}Config | dict[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        super().__init__(config, **fields)
        c = self.config
        self.time_linear_1 = nn.Linear(c.time_embedding_dim, c.time_embedding_dim)
        self.time_linear_2 = nn.Linear(c.time_embedding_dim, c.time_embedding_dim)
        self.conv_in = nn.Conv2d(c.in_channels, c.hidden_channels, 3, padding=1)
        self.blocks = nn.ModuleList(
            ResidualBlock(c.hidden_channels, c.time_embedding_dim, c.norm_num_groups)
            for _ in range(c.num_blocks)
        )
        self.norm_out = nn.GroupNorm(c.norm_num_groups, c.hidden_channels)
        self.conv_out = nn.Conv2d(c.hidden_channels, c.out_channels, 3, padding=1)

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | int | float,
        return_dict: bool = True,
    ) -> {{ class_name }}Output | tuple[torch.Tensor]:
        """Predict the noise of ``sample`` at ``timestep``.

        Args:
            sample: (B, in_channels, H, W) noisy images x_t.
            timestep: one timestep for the batch, or (B,) timesteps.
            return_dict: return an output dataclass (else a tuple).

        Returns:
            (B, out_channels, H, W) the predicted noise.
        """
        c = self.config
        t = torch.as_tensor(timestep, device=sample.device)
        t = t.reshape(-1).expand(sample.shape[0]) if t.numel() == 1 else t.reshape(-1)
        # sinusoidal embedding (Vaswani et al. 2017, sec. 3.5), computed here: no buffer
        temb = timestep_embedding(t, c.time_embedding_dim, flip_sin_to_cos=True, freq_shift=0)
        temb = temb.to(sample.dtype)
        temb = self.time_linear_2(nn.functional.silu(self.time_linear_1(temb)))
        temb = nn.functional.silu(temb)
        h = self.conv_in(sample)
        for block in self.blocks:
            h = block(h, temb)
        out = self.conv_out(nn.functional.silu(self.norm_out(h)))
        if not return_dict:
            return (out,)
        return {{ class_name }}Output(sample=out)
