"""Generated bad input (hypothesis): configs, weight files, pipeline calls, folders and saving.

Every target runs a fixed number of derandomized examples (the same cases on every run and in CI;
no example database is written). The hand-picked cases of each finding live in
``test_hardening.py``; these tests search the space around them.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from diffusers_hub import registry
from diffusers_hub.config import ComponentConfig, read_json
from diffusers_hub.errors import ConfigError

MAX_EXAMPLES = int(os.environ.get("HARDENING_EXAMPLES", "60"))

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


@pytest.mark.slow
@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
@settings(max_examples=MAX_EXAMPLES, **SETTINGS)
@given(data=st.data())
def test_generated_model_configs_fail_only_with_a_named_config_error(cls, data) -> None:
    config_data, touched = data.draw(mutated_config(cls))
    config = _check_config(cls, config_data, touched)
    if config is None:
        return
    with torch.device("meta"):  # builds the layers without allocating memory
        model = cls(config)
    numel = sum(p.numel() for p in model.parameters())
    assert numel < 10**12


@pytest.mark.slow
@pytest.mark.parametrize("cls", SCHEDULERS, ids=lambda c: c.__name__)
@settings(max_examples=MAX_EXAMPLES, **SETTINGS)
@given(data=st.data())
def test_generated_scheduler_configs_fail_only_with_a_named_config_error(cls, data) -> None:
    config_data, touched = data.draw(mutated_config(cls))
    config = _check_config(cls, config_data, touched)
    if config is None:
        return
    scheduler = cls(config)
    steps = min(10, scheduler.config.num_train_timesteps)
    scheduler.set_timesteps(steps)
    assert len(scheduler.timesteps) >= 1
    assert math.isfinite(float(scheduler.alphas_cumprod.min()))


def test_bases_are_valid() -> None:
    """The starting points of the generated configs are themselves valid configs."""
    for cls in [*MODELS, *SCHEDULERS]:
        cls.config_class.from_dict(json.loads(json.dumps(base_config(cls))))
