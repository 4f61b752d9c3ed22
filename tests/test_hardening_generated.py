"""Generated bad input (hypothesis): configs, weight files, pipeline calls, folders and saving.

Every target runs a fixed number of derandomized examples (the same cases on every run and in CI;
no example database is written). The hand-picked cases of each finding live in
``test_hardening.py``; these tests search the space around them.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from diffusers_hub import registry
from diffusers_hub.config import ComponentConfig, read_json
from diffusers_hub.errors import ConfigError, RegistryError, WeightsError
from diffusers_hub.hub import HubError
from diffusers_hub.modeling import ModelMixin

MAX_EXAMPLES = int(os.environ.get("HARDENING_EXAMPLES", "50"))

#: The same derandomized cases on every run; nothing is written into the repository.
SETTINGS = {
    "derandomize": True,
    "database": None,
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    "print_blob": False,
}


def _classes(kind: str) -> list[type[Any]]:
    seen: dict[str, type[Any]] = {}
    for entry in registry.list(kind, include_broken=False):
        cls = registry.get(kind, entry.names[0])
        seen.setdefault(f"{cls.__module__}.{cls.__qualname__}", cls)
    return list(seen.values())


MODELS = _classes("model")
SCHEDULERS = _classes("scheduler")


def _demo_configs() -> dict[str, dict[str, Any]]:
    """The small real configs of the embedded demo checkpoints, by ``_class_name``."""
    found: dict[str, dict[str, Any]] = {}
    for entry in registry.list("pipeline", include_broken=False):
        try:
            folder = Path(registry.demo_checkpoint(entry.names[0]))
        except Exception:
            continue
        for path in [*folder.glob("*/config.json"), *folder.glob("*/scheduler_config.json")]:
            data = read_json(path)
            if isinstance(data.get("_class_name"), str):
                found.setdefault(data["_class_name"], data)
    return found


DEMO_CONFIGS = _demo_configs()


def base_config(cls: type[Any]) -> dict[str, Any]:
    """A small valid config of ``cls``: its demo checkpoint's, else its defaults."""
    data = DEMO_CONFIGS.get(cls.__name__)
    if data is None:
        return cls.config_class().to_dict()
    return {k: v for k, v in data.items() if not k.startswith("_")}


# -- value strategies -------------------------------------------------------------------------------

ABSURD_INTS = st.sampled_from([0, -1, -8, 10**6, 10**9, 2**63, 3 * 10**18])
SMALL_INTS = st.integers(-2, 9)
SCALARS = st.one_of(
    SMALL_INTS,
    ABSURD_INTS,
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.5, 2.5, -0.1, 1e-9, 1e30]),
    st.text(max_size=6),
    st.sampled_from(["1", "true", "linear", "silu", "epsilon", ""]),
    st.booleans(),
    st.none(),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(st.one_of(SMALL_INTS, st.sampled_from([8, 16, 32, 64])), max_size=5),
    st.lists(SCALARS, max_size=4),
    st.dictionaries(st.text(max_size=4), SMALL_INTS, max_size=2),
)


def near(value: Any) -> st.SearchStrategy[Any]:
    """Values close to a valid ``value``: the same shape with other numbers, or wild ones."""
    if isinstance(value, bool):
        return st.one_of(st.booleans(), VALUES)
    if isinstance(value, int):
        return st.one_of(st.integers(-2, 2 * value + 9), ABSURD_INTS, VALUES)
    if isinstance(value, float):
        return st.one_of(st.floats(-1.0, 2.0 * abs(value) + 1.0), VALUES)
    if isinstance(value, list | tuple) and value and all(isinstance(v, int) for v in value):
        widths = st.sampled_from([-8, 0, 1, 3, 4, 6, 8, 12, 16, 32, 64])
        return st.one_of(
            st.lists(widths, min_size=len(value), max_size=len(value)),
            st.lists(widths, max_size=len(value) + 1),
            VALUES,
        )
    if isinstance(value, list | tuple) and value:
        return st.one_of(
            st.lists(st.sampled_from(list(value)), max_size=len(value) + 1),
            VALUES,
        )
    return VALUES


@st.composite
def mutated_config(draw: st.DrawFn, cls: type[Any]) -> tuple[dict[str, Any], set[str]]:
    """A config of ``cls`` with some fields changed or dropped and unknown keys added.

    Returns the data and the names of the fields that were touched.
    """
    data = base_config(cls)
    names = sorted(data)
    touched = set(draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)))
    for name in sorted(touched):
        if draw(st.integers(0, 5)) == 0:
            del data[name]  # a missing key takes its default
        else:
            data[name] = draw(near(data[name]))
    if draw(st.booleans()):
        data[draw(st.sampled_from(["zzz_unknown", "_private", "resolution", "timesteps"]))] = draw(
            VALUES
        )
    return data, touched


def _names_a_field(message: str, config_class: type[ComponentConfig], touched: set[str]) -> bool:
    known = set(config_class.model_fields) | set(config_class.legacy_keys) | touched
    return any(name in message for name in known)


def _check_config(cls: type[Any], data: dict[str, Any], touched: set[str]) -> Any:
    """Validate ``data``: a ConfigError naming a field, or a config that builds."""
    try:
        config = cls.config_class.from_dict(data, source="config.json", warn_unknown=False)
    except ConfigError as exc:
        event("ConfigError")
        assert "config.json" in str(exc)
        assert _names_a_field(str(exc), cls.config_class, touched), str(exc)
        return None
    event("valid")
    return config


def _build(cls: type[Any], config: Any) -> None:
    """Build the component from a valid config: models on the meta device (no memory),
    schedulers for real (their tables are bounded by the config), with a schedule set."""
    if issubclass(cls, torch.nn.Module):
        with torch.device("meta"):
            model = cls(config)
        assert all(p.is_meta for p in model.parameters())
        return
    scheduler = cls(config)
    try:
        scheduler.set_timesteps(min(10, scheduler.config.num_train_timesteps))
    except ValueError as exc:  # a schedule too short for 10 steps (an offset, PNDM's warm-up)
        assert "steps" in str(exc)
        return
    assert len(scheduler.timesteps) >= 1
    assert math.isfinite(float(scheduler.alphas_cumprod.min()))


@pytest.mark.slow
@pytest.mark.parametrize("cls", MODELS + SCHEDULERS, ids=lambda c: c.__name__)
@settings(max_examples=MAX_EXAMPLES, **SETTINGS)
@given(data=st.data())
def test_generated_configs_fail_only_with_a_named_config_error(cls, data) -> None:
    config_data, touched = data.draw(mutated_config(cls))
    config = _check_config(cls, config_data, touched)
    if config is None:
        return
    try:
        _build(cls, config)
    except ConfigError as exc:  # a check that needs the built schedule (alpha_bar reaching 0)
        event("ConfigError when built")
        assert _names_a_field(str(exc), cls.config_class, touched), str(exc)


def test_bases_are_valid() -> None:
    """The starting points of the generated configs are themselves valid configs."""
    for cls in [*MODELS, *SCHEDULERS]:
        cls.config_class.from_dict(json.loads(json.dumps(base_config(cls))))


# -- weight files -----------------------------------------------------------------------------------


class TinyConfig(ComponentConfig):
    channels: int = 2


class Tiny(ModelMixin):
    """A model small enough to corrupt and reload hundreds of times."""

    config_class = TinyConfig

    def __init__(self, config: TinyConfig | None = None, **fields: Any) -> None:
        super().__init__(config, **fields)
        c = self.config.channels
        self.conv_in = torch.nn.Conv2d(c, 4, 3, padding=1)
        self.norm = torch.nn.GroupNorm(2, 4)
        self.conv_out = torch.nn.Conv2d(4, c, 1)


def _saved_tiny(folder: Path) -> tuple[Tiny, Path]:
    torch.manual_seed(0)
    model = Tiny()
    model.save_pretrained(folder)
    return model, folder / "diffusion_pytorch_model.safetensors"


def _rewrite(path: Path, change: str, key: str, draw: st.DrawFn) -> None:
    """Change the safetensors file at ``path`` in one of the ways a bad file differs."""
    from safetensors.torch import load_file, save_file

    raw = bytearray(path.read_bytes())
    header_end = 8 + int.from_bytes(raw[:8], "little")
    if change == "truncate":
        path.write_bytes(bytes(raw[: draw(st.integers(0, len(raw) - 1))]))
    elif change == "flip_header_bit":
        position = draw(st.integers(0, header_end - 1))
        raw[position] ^= 1 << draw(st.integers(0, 7))
        path.write_bytes(bytes(raw))
    elif change == "flip_any_bit":
        position = draw(st.integers(0, len(raw) - 1))
        raw[position] ^= 1 << draw(st.integers(0, 7))
        path.write_bytes(bytes(raw))
    elif change == "zero_bytes":
        path.write_bytes(b"")
    elif change == "duplicate_key":
        header = json.loads(bytes(raw[8:header_end]))
        text = json.dumps(header)
        entry = f'"{key}": {json.dumps(header[key])}'
        assert entry in text
        doubled = text.replace(entry, f"{entry}, {entry}", 1).encode()
        path.write_bytes(len(doubled).to_bytes(8, "little") + doubled + bytes(raw[header_end:]))
    else:
        state = load_file(path)
        if change == "missing_key":
            del state[key]
        elif change == "extra_key":
            state[f"{key}.extra"] = torch.zeros(1)
        elif change == "wrong_shape":
            shapes = st.lists(st.integers(1, 5), min_size=1, max_size=4)
            shape = draw(shapes.filter(lambda s: tuple(s) != tuple(state[key].shape)))
            state[key] = torch.zeros(shape)
        elif change == "wrong_dtype":
            dtype = draw(st.sampled_from([torch.int64, torch.int8, torch.bool, torch.uint8]))
            state[key] = state[key].to(dtype)
        elif change == "non_finite":
            flat = state[key].reshape(-1)
            flat[draw(st.integers(0, flat.numel() - 1))] = draw(
                st.sampled_from([math.nan, math.inf, -math.inf])
            )
        save_file(state, path)


WEIGHT_CHANGES = [
    "truncate",
    "flip_header_bit",
    "flip_any_bit",
    "zero_bytes",
    "duplicate_key",
    "missing_key",
    "extra_key",
    "wrong_shape",
    "wrong_dtype",
    "non_finite",
]
NAMES_THE_KEY = {"missing_key", "extra_key", "wrong_shape", "wrong_dtype", "non_finite"}


@pytest.mark.slow
@settings(max_examples=3 * MAX_EXAMPLES, **SETTINGS)
@given(data=st.data())
def test_generated_bad_weight_files_give_a_weights_error_naming_file_and_key(data) -> None:
    change = data.draw(st.sampled_from(WEIGHT_CHANGES), label="change")
    key = data.draw(st.sampled_from(sorted(Tiny().state_dict())), label="key")
    event(change)
    with tempfile.TemporaryDirectory() as tmp:
        original, path = _saved_tiny(Path(tmp) / "m")
        _rewrite(path, change, key, data.draw)
        try:
            loaded = Tiny.from_pretrained(path.parent)
        except WeightsError as exc:
            assert str(path) in str(exc)
            if change in NAMES_THE_KEY:
                assert key in str(exc)
            return
        # Only a change the format cannot see (a flipped bit in the data) may load, and then
        # as a whole model of finite values.
        assert change in ("flip_any_bit", "flip_header_bit", "duplicate_key"), change
        tensors = [*loaded.parameters(), *loaded.buffers()]
        assert all(not t.is_meta and bool(torch.isfinite(t).all()) for t in tensors)
        assert loaded.state_dict().keys() == original.state_dict().keys()


# -- pipeline calls ---------------------------------------------------------------------------------


class CudaGenerator(torch.Generator):
    """A generator that reports a CUDA device (a CPU-only machine cannot make a real one)."""

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        return torch.device("cuda", 0)


@pytest.fixture(scope="module")
def ddpm_pipe() -> Any:
    pipe = registry.pipeline("DDPMPipeline").from_pretrained(registry.demo_checkpoint("ddpm"))
    pipe.set_progress_bar_config(disable=True)
    return pipe


STEPS = st.sampled_from([1, 2, 0, -1, 1001, 10**9, 2.5, True, "2"])  # the default 1000 is slow
BATCHES = st.sampled_from([1, 2, 0, -1, 1.5, False, "1", None])
OUTPUT_TYPES = st.sampled_from(["np", "pt", "pil", "jpeg", "", "PIL", None, 3])
GENERATORS = st.sampled_from(["none", "cpu", "list_right", "list_wrong", "string", "int", "cuda"])


def _generator(kind: str, batch: Any) -> Any:
    size = batch if isinstance(batch, int) and not isinstance(batch, bool) and batch > 0 else 1
    return {
        "none": None,
        "cpu": torch.Generator().manual_seed(0),
        "list_right": [torch.Generator().manual_seed(i) for i in range(size)],
        "list_wrong": [torch.Generator()] * (size + 1),
        "string": "cuda:7",
        "int": 7,
        "cuda": CudaGenerator(),
    }[kind]


ARGUMENT_NAMES = ("batch_size", "num_inference_steps", "output_type", "generator", "prompt")


@pytest.mark.slow
@settings(max_examples=2 * MAX_EXAMPLES, **SETTINGS)
@given(steps=STEPS, batch=BATCHES, output_type=OUTPUT_TYPES, generator=GENERATORS)
def test_generated_pipeline_calls_fail_with_the_argument_named(
    ddpm_pipe, steps, batch, output_type, generator
) -> None:
    options = {"num_inference_steps": steps, "batch_size": batch, "output_type": output_type}
    options = {k: v for k, v in options.items() if v is not None}
    options["generator"] = _generator(generator, batch)
    try:
        out = ddpm_pipe(**options)
    except (TypeError, ValueError) as exc:
        event(type(exc).__name__)
        assert any(name in str(exc) for name in ARGUMENT_NAMES), str(exc)
        return
    event("ran")
    images = out.images
    assert len(images) == options.get("batch_size", 1)


@pytest.fixture(scope="module")
def ldm_pipe() -> Any:
    folder = registry.demo_checkpoint("latent-diffusion")
    pipe = registry.pipeline("LDMTextToImagePipeline").from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


PROMPTS = st.one_of(
    st.sampled_from(["", "a squirrel", " ".join(["word"] * 10_000), None, 123, [], ["a", 2]]),
    st.lists(st.text(max_size=12), min_size=1, max_size=2),
)
GUIDANCE = st.sampled_from([1.0, 3.0, -2.0, 0.0, math.nan, math.inf, "2", None])


@pytest.mark.slow
@settings(max_examples=MAX_EXAMPLES, **SETTINGS)
@given(prompt=PROMPTS, guidance=GUIDANCE, steps=st.sampled_from([1, 0, 1001, 1.5]))
def test_generated_text_pipeline_calls(ldm_pipe, prompt, guidance, steps) -> None:
    options: dict[str, Any] = {"num_inference_steps": steps, "output_type": "np"}
    if guidance is not None:
        options["guidance_scale"] = guidance
    try:
        out = ldm_pipe(prompt, **options)
    except (TypeError, ValueError) as exc:
        event(type(exc).__name__)
        assert any(n in str(exc) for n in ("prompt", "guidance_scale", "num_inference_steps"))
        return
    event("ran")
    count = 1 if isinstance(prompt, str) else len(prompt)
    assert out.images.shape[0] == count
    assert np.isfinite(out.images).all()


# -- folders ----------------------------------------------------------------------------------------

PARTS = st.sampled_from(["..", ".", "unet", "outside", "link", "sub", "/", "", "unet/.."])


@pytest.mark.slow
@settings(max_examples=MAX_EXAMPLES, **SETTINGS)
@given(parts=st.lists(PARTS, min_size=1, max_size=4))
def test_generated_component_paths_never_leave_the_folder(parts) -> None:
    demo = Path(registry.demo_checkpoint("ddpm"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        shutil.copytree(demo, root)
        outside = Path(tmp) / "outside"
        shutil.copytree(demo / "unet", outside)
        (root / "link").symlink_to(outside, target_is_directory=True)
        (root / "sub").mkdir()
        (root / "sub" / "outside").symlink_to(outside, target_is_directory=True)
        subfolder = "/".join(parts)
        unet_cls = registry.model("UNet2DModel")
        try:
            unet_cls.from_pretrained(root, subfolder=subfolder or None)
        except (HubError, WeightsError) as exc:
            event("refused or missing")
            assert str(root) in str(exc) or "outside" in str(exc)
            return
        event("loaded")
        where = (root / subfolder).resolve() if subfolder else root.resolve()
        assert where == (root / "unet").resolve() or where == root.resolve(), subfolder


MODULES = st.sampled_from(["os", "subprocess", "builtins", "shutil", "evil_mod", "diffusers", None])
OBJECTS = st.sampled_from(["system", "eval", "Popen", "rmtree", "Payload", "UNet2DModel", "x"])


@pytest.mark.slow
@settings(max_examples=MAX_EXAMPLES, **SETTINGS)
@given(entries=st.lists(st.tuples(MODULES, OBJECTS), min_size=1, max_size=3))
def test_generated_model_index_entries_never_import_a_module(entries) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        index: dict[str, Any] = {"_class_name": "DDPMPipeline"}
        index.update({f"c{i}": list(entry) for i, entry in enumerate(entries)})
        (root / "model_index.json").write_text(json.dumps(index))
        before = set(sys.modules)
        with pytest.raises((RegistryError, ConfigError, HubError)):
            registry.pipeline("DDPMPipeline").from_pretrained(root)
        assert not {"subprocess", "evil_mod"} & (set(sys.modules) - before)
        assert set(sys.modules) - before <= {m for m in set(sys.modules) if "diffusers_hub" in m}
