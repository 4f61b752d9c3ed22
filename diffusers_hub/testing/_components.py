"""The conformance contracts of models and pipelines (``ModelContract``, ``PipelineContract``);
import them from :mod:`diffusers_hub.testing`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from diffusers_hub.modeling import ModelMixin
from diffusers_hub.pipeline import DiffusionPipeline


def perturb(model: torch.nn.Module, seed: int = 0, scale: float = 0.02) -> None:
    """Add seeded Gaussian noise (std ``scale``) to every parameter, in place, so that a freshly
    initialised model (zero-initialised output layers, say) computes something to compare."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))


class ModelContract:
    """What every model must do; subclass it in a ``Test*`` class.

    Attributes:
        model_class: the model under test (a ``ModelMixin`` subclass).
        model_config: config fields of a small instance.
        atol: tolerance of the round-trip and dtype comparisons.

    Subclasses implement :meth:`make_inputs`, returning the positional arguments of ``forward``.
    """

    model_class: ClassVar[type[ModelMixin]]
    model_config: ClassVar[dict[str, Any]] = {}
    atol: ClassVar[float] = 1e-6

    def make_model(self, seed: int = 0) -> ModelMixin:
        """A model with seeded random weights, in eval mode."""
        torch.manual_seed(seed)
        return self.model_class(**self.model_config).eval()

    def make_inputs(self, batch_size: int = 2) -> tuple[Any, ...]:
        """The positional ``forward`` arguments for a batch (override in the subclass)."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_inputs()")

    def output_tensor(self, output: Any) -> torch.Tensor:
        """The main tensor of a ``forward`` result (``.sample``, first item, or the tensor)."""
        if isinstance(output, torch.Tensor):
            return output
        for attr in ("sample", "last_hidden_state"):
            if hasattr(output, attr):
                return getattr(output, attr)  # type: ignore[no-any-return]
        return output[0]  # type: ignore[no-any-return]

    def run(self, model: ModelMixin, inputs: tuple[Any, ...]) -> torch.Tensor:
        with torch.no_grad():
            return self.output_tensor(model(*inputs))

    def test_save_load_round_trip(self, tmp_path: Path) -> None:
        model = self.make_model()
        inputs = self.make_inputs()
        model.save_pretrained(tmp_path / "model")
        config = json.loads((tmp_path / "model" / model.config_name).read_text())
        assert config["_class_name"] == type(model).__name__
        loaded = type(model).from_pretrained(tmp_path / "model")
        assert loaded.config == model.config
        torch.testing.assert_close(
            self.run(loaded, inputs), self.run(model, inputs), atol=self.atol, rtol=0
        )

    def test_deterministic(self) -> None:
        inputs = self.make_inputs()
        a = self.run(self.make_model(seed=1), inputs)
        b = self.run(self.make_model(seed=1), inputs)
        assert torch.equal(a, b)

    def test_output_is_finite_and_batched(self) -> None:
        out = self.run(self.make_model(), self.make_inputs(batch_size=2))
        assert out.shape[0] == 2
        assert torch.isfinite(out).all()

    def test_batch_items_are_independent(self) -> None:
        model = self.make_model()
        both = self.run(model, self.make_inputs(batch_size=2))
        first = self.run(
            model,
            tuple(
                x[:1] if isinstance(x, torch.Tensor) and x.ndim > 0 and x.shape[0] == 2 else x
                for x in self.make_inputs(batch_size=2)
            ),
        )
        torch.testing.assert_close(first[0], both[0], atol=1e-5, rtol=1e-4)

    def test_dtype_move(self) -> None:
        model = self.make_model().to(torch.float64)
        assert model.dtype == torch.float64
        assert all(p.dtype == torch.float64 for p in model.parameters())
        inputs = tuple(
            x.double() if isinstance(x, torch.Tensor) and x.is_floating_point() else x
            for x in self.make_inputs()
        )
        out = self.run(model, inputs)
        assert out.dtype == torch.float64

    def test_config_rejects_unknown_fields(self) -> None:
        import pytest

        with pytest.raises(TypeError):
            self.model_class(**self.model_config, not_a_config_field=1)


# --------------------------------------------------------------------------------------------------
# PipelineContract
# --------------------------------------------------------------------------------------------------


class PipelineContract:
    """What every pipeline must do; subclass it in a ``Test*`` class.

    Subclasses implement :meth:`make_pipeline` (small random components) and may set
    ``call_kwargs`` (arguments of a short, cheap ``__call__``).
    """

    call_kwargs: ClassVar[dict[str, Any]] = {"num_inference_steps": 2}

    def make_pipeline(self) -> DiffusionPipeline:
        """A pipeline with small random components (override in the subclass)."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_pipeline()")

    def generate(self, pipe: DiffusionPipeline, seed: int = 0, **kwargs: Any) -> Any:
        pipe.set_progress_bar_config(disable=True)
        generator = torch.Generator().manual_seed(seed)
        call: Any = pipe  # every concrete pipeline defines __call__
        return call(generator=generator, **{**self.call_kwargs, "output_type": "np", **kwargs})

    def _first_output(self, pipe: DiffusionPipeline, **kwargs: Any) -> Any:
        """The images (or audios) of :meth:`generate`, else the first item of its result."""
        output = self.generate(pipe, **kwargs)
        for attr in ("images", "audios"):
            if hasattr(output, attr):
                return getattr(output, attr)
        return output[0]

    def test_seeded_runs_repeat(self) -> None:
        pipe = self.make_pipeline()
        np.testing.assert_array_equal(self._first_output(pipe), self._first_output(pipe))

    def test_save_load_round_trip(self, tmp_path: Path) -> None:
        pipe = self.make_pipeline()
        pipe.save_pretrained(tmp_path / "pipe")
        index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
        assert index["_class_name"] == type(pipe).__name__
        loaded = DiffusionPipeline.from_pretrained(tmp_path / "pipe")
        assert type(loaded) is type(pipe)
        np.testing.assert_allclose(self._first_output(loaded), self._first_output(pipe), atol=1e-5)

    def test_output_types(self) -> None:
        pipe = self.make_pipeline()
        as_np = self._first_output(pipe, output_type="np")
        as_pt = self._first_output(pipe, output_type="pt")
        assert isinstance(as_np, np.ndarray) and isinstance(as_pt, torch.Tensor)
        assert as_np.min() >= 0 and as_np.max() <= 1

    def test_callback_sees_every_step(self) -> None:
        pipe = self.make_pipeline()
        seen: list[int] = []
        self.generate(pipe, callback=lambda i, t, x: seen.append(i), callback_steps=1)
        assert seen == list(range(len(seen))) and len(seen) >= 1

    def test_components_rebuild_the_pipeline(self) -> None:
        pipe = self.make_pipeline()
        again = type(pipe)(**pipe.components)
        np.testing.assert_array_equal(self._first_output(again), self._first_output(pipe))
