"""Pipeline folders: loading through the registry only, saving atomically, outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from diffusers_hub import registry
from diffusers_hub.config import ComponentConfig
from diffusers_hub.errors import ConfigError, RegistryError
from diffusers_hub.modeling import ModelMixin
from diffusers_hub.noise import randn_tensor
from diffusers_hub.pipeline import DiffusionPipeline, ImagePipelineOutput, tensor_to_images
from diffusers_hub.scheduling import SchedulerConfig, SchedulerMixin, SchedulerOutput


class NetConfig(ComponentConfig):
    channels: int = 3
    sample_size: int = 8


class Net(ModelMixin):
    config_class = NetConfig

    def __init__(self, config: NetConfig | None = None, **fields: Any) -> None:
        super().__init__(config, **fields)
        self.conv = nn.Conv2d(self.config.channels, self.config.channels, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * 0.1


class StepConfig(SchedulerConfig):
    scale: float = 0.9


class Stepper(SchedulerMixin):
    """A scheduler-shaped component: x <- scale * x - eps."""

    config_class = StepConfig

    def step(self, model_output, timestep, sample, generator=None) -> SchedulerOutput:
        return SchedulerOutput(prev_sample=self.config.scale * sample - model_output)


class ToyPipeline(DiffusionPipeline):
    optional_components = ("extra",)

    def __init__(self, net: Net, scheduler: Stepper, extra: Net | None = None) -> None:
        super().__init__(net=net, scheduler=scheduler, extra=extra)

    @torch.no_grad()
    def __call__(
        self,
        batch_size: int = 1,
        generator: torch.Generator | None = None,
        steps: int = 3,
        output_type: str = "pil",
    ) -> ImagePipelineOutput:
        c = self.net.config
        x = randn_tensor(
            (batch_size, c.channels, c.sample_size, c.sample_size),
            generator=generator,
            device=self.device,
        )
        for t in self.progress_bar(range(steps)):
            x = self.scheduler.step(self.net(x, torch.tensor(t)), t, x).prev_sample
        return ImagePipelineOutput(images=tensor_to_images(x.clamp(-1, 1), output_type))


@pytest.fixture
def toy_registry():
    components = {"model": ("Net", Net), "scheduler": ("Stepper", Stepper)}
    components["pipeline"] = ("ToyPipeline", ToyPipeline)
    for kind, (name, obj) in components.items():
        registry.register(kind, name, obj)
    yield
    for kind, (name, _) in components.items():
        registry.unregister(kind, name)


@pytest.fixture
def pipe() -> ToyPipeline:
    torch.manual_seed(0)
    p = ToyPipeline(net=Net(), scheduler=Stepper(scale=0.5))
    p.set_progress_bar_config(disable=True)
    return p


def edit_index(folder: Path, drop: str | None = None, **changes: object) -> None:
    """Rewrite the ``model_index.json`` of ``folder`` with ``changes`` set and ``drop`` removed."""
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    index.update(changes)
    if drop is not None:
        del index[drop]
    index_path.write_text(json.dumps(index))


def run(p: DiffusionPipeline) -> np.ndarray:
    return p(generator=torch.Generator().manual_seed(3), output_type="np").images


def test_round_trip_picks_class_from_model_index(tmp_path, pipe, toy_registry) -> None:
    pipe.save_pretrained(tmp_path / "p")
    index = json.loads((tmp_path / "p" / "model_index.json").read_text())
    assert index["_class_name"] == "ToyPipeline"
    assert index["net"] == ["diffusers", "Net"]
    assert index["extra"] == [None, None]
    loaded = DiffusionPipeline.from_pretrained(tmp_path / "p")
    assert isinstance(loaded, ToyPipeline)
    assert loaded.extra is None
    loaded.set_progress_bar_config(disable=True)
    np.testing.assert_array_equal(run(loaded), run(pipe))


def test_keyword_overrides_a_component(tmp_path, pipe, toy_registry) -> None:
    pipe.save_pretrained(tmp_path / "p")
    loaded = ToyPipeline.from_pretrained(tmp_path / "p", scheduler=Stepper(scale=0.1))
    assert loaded.scheduler.config.scale == 0.1
    assert set(loaded.components) == {"net", "scheduler", "extra"}


def test_flat_folder_loads_with_the_pipeline_class(tmp_path, pipe, toy_registry) -> None:
    pipe.net.save_pretrained(tmp_path / "flat")
    pipe.scheduler.save_config(tmp_path / "flat")
    index = {
        "_class_name": "ToyPipeline",
        "net": ["diffusers", "Net"],
        "scheduler": ["diffusers", "Stepper"],
    }
    (tmp_path / "flat" / "model_index.json").write_text(json.dumps(index))
    loaded = DiffusionPipeline.from_pretrained(tmp_path / "flat")
    loaded.set_progress_bar_config(disable=True)
    np.testing.assert_array_equal(run(loaded), run(pipe))


def test_unknown_library_class_imports_nothing(tmp_path, pipe, toy_registry, monkeypatch) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "evil_payload_mod.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    pipe.save_pretrained(tmp_path / "p")
    for spec in (["os", "system"], ["evil_payload_mod", "Payload"]):
        edit_index(tmp_path / "p", net=spec)
        before = set(sys.modules)
        with pytest.raises(RegistryError, match=spec[1]):
            DiffusionPipeline.from_pretrained(tmp_path / "p")
        assert "evil_payload_mod" not in set(sys.modules) - before
        assert not marker.exists()


def test_unknown_pipeline_class_is_a_registry_error(tmp_path, pipe, toy_registry) -> None:
    pipe.save_pretrained(tmp_path / "p")
    edit_index(tmp_path / "p", _class_name="NoSuchPipeline")
    with pytest.raises(RegistryError, match="NoSuchPipeline"):
        DiffusionPipeline.from_pretrained(tmp_path / "p")


def test_missing_component_says_how_to_fix(tmp_path, pipe, toy_registry) -> None:
    pipe.save_pretrained(tmp_path / "p")
    edit_index(tmp_path / "p", drop="scheduler")
    with pytest.raises(ConfigError, match=r"needs the components scheduler.*scheduler=\.\.\."):
        DiffusionPipeline.from_pretrained(tmp_path / "p")
    assert ToyPipeline.from_pretrained(tmp_path / "p", scheduler=Stepper()).scheduler is not None


def test_malformed_component_entry(tmp_path, pipe, toy_registry) -> None:
    pipe.save_pretrained(tmp_path / "p")
    edit_index(tmp_path / "p", net="Net")
    with pytest.raises(ConfigError, match=r"component 'net' = 'Net' is invalid"):
        DiffusionPipeline.from_pretrained(tmp_path / "p")


def test_interrupted_pipeline_save_keeps_old_checkpoint(tmp_path, pipe, toy_registry) -> None:
    pipe.save_pretrained(tmp_path / "p")
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    class Exploding(Stepper):
        def save_pretrained(self, directory) -> None:
            raise RuntimeError("disk full")

    broken = ToyPipeline(net=Net(), scheduler=Exploding())
    with pytest.raises(RuntimeError, match="disk full"):
        broken.save_pretrained(tmp_path / "p")
    after = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before
    loaded = DiffusionPipeline.from_pretrained(tmp_path / "p")
    loaded.set_progress_bar_config(disable=True)
    np.testing.assert_array_equal(run(loaded), run(pipe))


@pytest.mark.parametrize("output_type", ["pil", "np", "pt"])
def test_output_types(pipe, output_type) -> None:
    images = pipe(batch_size=2, output_type=output_type).images
    if output_type == "pil":
        assert len(images) == 2 and images[0].size == (8, 8) and images[0].mode == "RGB"
    elif output_type == "np":
        assert images.shape == (2, 8, 8, 3) and images.min() >= 0 and images.max() <= 1
    else:
        assert images.shape == (2, 3, 8, 8)


def test_grayscale_images_become_mode_l() -> None:
    images = tensor_to_images(torch.zeros(1, 1, 4, 4), "pil")
    assert images[0].mode == "L" and np.asarray(images[0])[0, 0] == 128


def test_bad_output_type() -> None:
    with pytest.raises(ValueError, match="output_type"):
        tensor_to_images(torch.zeros(1, 3, 4, 4), "jpeg")  # type: ignore[arg-type]


def test_to_moves_every_model_and_dtype(pipe) -> None:
    pipe.to(dtype=torch.float64)
    assert pipe.dtype == torch.float64 and pipe.net.dtype == torch.float64
    assert pipe.device == torch.device("cpu")


def test_noise_is_drawn_on_the_generator_device_and_per_item() -> None:
    a = randn_tensor((2, 3), generator=torch.Generator().manual_seed(1))
    b = randn_tensor(
        (2, 3), generator=torch.Generator().manual_seed(1), device="cpu", dtype=torch.float64
    )
    torch.testing.assert_close(a.double(), b)
    gens = [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)]
    per_item = randn_tensor((2, 3), generator=gens)
    torch.testing.assert_close(
        per_item[0], randn_tensor((1, 3), generator=torch.Generator().manual_seed(1))[0]
    )
    half = randn_tensor((2, 3), generator=torch.Generator().manual_seed(1), dtype=torch.float16)
    torch.testing.assert_close(half, a.half())  # same seed, same noise in half precision
    with pytest.raises(ValueError, match="one generator per batch item"):
        randn_tensor((3, 3), generator=gens)
