"""LDMBert: the text encoder that LDM trained from scratch (a pre-LN transformer encoder).

The checkpoint's ``bert/`` folder is transformers-style: ``config.json`` with ``model_type
"ldmbert"`` and weights in ``model.safetensors`` (or ``pytorch_model.bin``). Key names follow the
BART encoder: ``model.embed_tokens``, ``model.embed_positions``,
``model.layers.N.self_attn.{q,k,v,out}_proj``, ``self_attn_layer_norm``, ``fc1``, ``fc2``,
``final_layer_norm``, ``model.layer_norm`` and the (unused at inference) ``to_logits`` head.

There is no attention mask: padding tokens are attended like any other, as in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import Tensor, nn

from diffusers_hub.config import Channels, ComponentConfig, Count, Features, Vocabulary
from diffusers_hub.modeling import ModelMixin

__all__ = ["LDMBertConfig", "LDMBertModel", "LDMBertOutput"]


class LDMBertConfig(ComponentConfig):
    """Fields of LDMBert's transformers-style ``config.json`` (defaults: the released model).

    Attributes:
        vocab_size: WordPiece vocabulary size (bert-base-uncased: 30522).
        max_position_embeddings: number of learned positions (77 tokens).
        encoder_layers: transformer layers (32).
        encoder_ffn_dim: hidden size of the feed-forward layers (5120).
        encoder_attention_heads: heads per attention layer (8).
        head_dim: channels per head (64); the attention width is ``heads * head_dim``.
        d_model: model width (1280).
        activation_function: feed-forward activation (``gelu`` is the exact erf form).
        dropout, attention_dropout, activation_dropout: training-time dropout rates.
        init_std: std of the normal init of linear and embedding weights.
        pad_token_id: id of ``[PAD]`` (0); recorded, padding is not masked.
        scale_embedding: must be False (the reference model never scales its embeddings).
        model_type: ``"ldmbert"``.
    """

    legacy_keys: ClassVar[dict[str, str]] = {
        "hidden_size": "d_model",
        "num_attention_heads": "encoder_attention_heads",
    }
    obsolete_keys: ClassVar[frozenset[str]] = frozenset(
        {
            "architectures",
            "dtype",
            "torch_dtype",
            "transformers_version",
            "num_hidden_layers",
            "use_cache",
            "encoder_layerdrop",
            "classifier_dropout",
            "is_encoder_decoder",
            "bos_token_id",
            "eos_token_id",
            "return_dict",
            "output_hidden_states",
            "output_attentions",
            "id2label",
            "label2id",
        }
    )

    vocab_size: Vocabulary = 30522
    max_position_embeddings: Features = 77
    encoder_layers: Count = 32
    encoder_ffn_dim: Features = 5120
    encoder_attention_heads: Count = 8
    head_dim: Channels = 64
    d_model: Features = 1280
    activation_function: Literal[
        "gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu", "swish"
    ] = "gelu"
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    attention_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    activation_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    init_std: float = Field(default=0.02, gt=0.0)
    pad_token_id: int | None = Field(default=0, ge=0)
    scale_embedding: bool = False
    model_type: Literal["ldmbert"] = "ldmbert"

    @field_validator("scale_embedding")
    @classmethod
    def _no_scaling(cls, value: bool) -> bool:
        if value:
            raise ValueError("scale_embedding=True is not supported (LDMBert never scales)")
        return value


def _activation(name: str, x: Tensor) -> Tensor:
    if name == "gelu":
        return F.gelu(x)
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu(x)
    return F.silu(x)


@dataclass
class LDMBertOutput:
    """Output of :class:`LDMBertModel`; ``output[0]`` is ``last_hidden_state``.

    Attributes:
        last_hidden_state: (B, L, d_model) the final layer-normed token features.
    """

    last_hidden_state: Tensor

    def __getitem__(self, index: int) -> Tensor:
        return (self.last_hidden_state,)[index]

    def __len__(self) -> int:
        return 1


class LDMBertAttention(nn.Module):
    """Multi-head self-attention: ``q_proj``, ``k_proj``, ``v_proj`` (no bias), ``out_proj``."""

    def __init__(self, embed_dim: int, num_heads: int, head_dim: int, dropout: float) -> None:
        super().__init__()
        inner = num_heads * head_dim
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.dropout = dropout
        self.k_proj = nn.Linear(embed_dim, inner, bias=False)
        self.v_proj = nn.Linear(embed_dim, inner, bias=False)
        self.q_proj = nn.Linear(embed_dim, inner, bias=False)
        self.out_proj = nn.Linear(inner, embed_dim)

    def forward(self, hidden_states: Tensor) -> Tensor:
        """softmax(Q K^T / sqrt(head_dim)) V over all tokens.

        Args:
            hidden_states: (B, L, D).

        Returns:
            (B, L, D).
        """
        b, n, _ = hidden_states.shape

        def heads(x: Tensor) -> Tensor:
            return x.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

        q = heads(self.q_proj(hidden_states))
        k = heads(self.k_proj(hidden_states))
        v = heads(self.v_proj(hidden_states))
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, self.num_heads * self.head_dim))


class LDMBertEncoderLayer(nn.Module):
    """Pre-LN block: ``x + Attn(LN(x))`` then ``x + FC2(act(FC1(LN(x))))``."""

    def __init__(self, config: LDMBertConfig) -> None:
        super().__init__()
        d = config.d_model
        self.config = config
        self.self_attn = LDMBertAttention(
            d, config.encoder_attention_heads, config.head_dim, config.attention_dropout
        )
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, config.encoder_ffn_dim)
        self.fc2 = nn.Linear(config.encoder_ffn_dim, d)
        self.final_layer_norm = nn.LayerNorm(d)

    def forward(self, x: Tensor) -> Tensor:
        c = self.config
        h = self.self_attn(self.self_attn_layer_norm(x))
        x = x + F.dropout(h, c.dropout, self.training)
        h = _activation(c.activation_function, self.fc1(self.final_layer_norm(x)))
        h = self.fc2(F.dropout(h, c.activation_dropout, self.training))
        return x + F.dropout(h, c.dropout, self.training)


class LDMBertEncoder(nn.Module):
    """Token + learned position embeddings, the layers, a final LayerNorm."""

    def __init__(self, config: LDMBertConfig) -> None:
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.d_model)
        self.embed_positions = nn.Embedding(config.max_position_embeddings, config.d_model)
        self.layers = nn.ModuleList(
            LDMBertEncoderLayer(config) for _ in range(config.encoder_layers)
        )
        self.layer_norm = nn.LayerNorm(config.d_model)

    def forward(self, input_ids: Tensor) -> Tensor:
        n = input_ids.shape[-1]
        if n > self.config.max_position_embeddings:
            raise ValueError(
                f"LDMBert takes at most {self.config.max_position_embeddings} tokens, got {n}"
            )
        positions = torch.arange(n, device=input_ids.device)
        x = self.embed_tokens(input_ids) + self.embed_positions(positions)[None]
        x = F.dropout(x, self.config.dropout, self.training)
        for layer in self.layers:
            x = layer(x)
        return self.layer_norm(x)


class LDMBertModel(ModelMixin):
    """LDM's text encoder: token ids -> per-token features used as cross-attention context.

    References:
        Rombach et al., "High-Resolution Image Synthesis with Latent Diffusion Models",
        arXiv:2112.10752 (Sec. 3.3, the transformer tau_theta); the layer is BART's encoder layer
        in pre-LN form.

    Example:
        >>> import torch
        >>> bert = LDMBertModel(vocab_size=100, encoder_layers=2, d_model=32, encoder_ffn_dim=64,
        ...                     encoder_attention_heads=2, head_dim=16)
        >>> bert(torch.zeros(1, 77, dtype=torch.long)).last_hidden_state.shape
        torch.Size([1, 77, 32])
    """

    config_class = LDMBertConfig
    config: LDMBertConfig
    default_subfolder: ClassVar[str | None] = "bert"
    weights_names: ClassVar[tuple[str, ...]] = ("model", "pytorch_model")
    #: The library named for this class in model_index.json.
    hub_library: ClassVar[str] = "latent_diffusion"

    def __init__(self, config: LDMBertConfig | dict[str, Any] | None = None, **fields: Any) -> None:
        super().__init__(config, **fields)
        c = self.config
        self.model = LDMBertEncoder(c)
        self.to_logits = nn.Linear(c.d_model, c.vocab_size)
        if not any(p.is_meta for p in self.parameters()):
            self.init_weights()

    def init_weights(self) -> None:
        """Normal(0, init_std) linear and embedding weights, zero biases, unit LayerNorms."""
        std = self.config.init_std
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, 0.0, std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, input_ids: Tensor, return_dict: bool = True) -> LDMBertOutput | tuple[Tensor]:
        """Encode token ids.

        Args:
            input_ids: (B, L) token ids, L <= max_position_embeddings (77).
            return_dict: an :class:`LDMBertOutput` (default) or a 1-tuple.

        Returns:
            ``last_hidden_state``: (B, L, d_model).
        """
        hidden = self.model(input_ids)
        return LDMBertOutput(hidden) if return_dict else (hidden,)

    def config_dict(self) -> dict[str, Any]:
        """The config as written to disk: transformers-style, loadable by transformers too."""
        data = super().config_dict()
        c = self.config
        data["architectures"] = ["LDMBertModel"]
        data["num_hidden_layers"] = c.encoder_layers
        return data
