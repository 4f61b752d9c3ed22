"""Config validation and the diffusers JSON round trip."""

from __future__ import annotations

import json
import logging
from typing import ClassVar, Literal

import pytest

from diffusers_hub.config import ComponentConfig, ConfigMixin
from diffusers_hub.errors import ConfigError


class ToyConfig(ComponentConfig):
    num_train_timesteps: int = 1000
    beta_schedule: Literal["linear", "scaled_linear"] = "linear"
    clip_sample: bool = True
    block_out_channels: tuple[int, ...] = (32, 64)

    legacy_keys: ClassVar[dict[str, str]] = {
        "timesteps": "num_train_timesteps",
        "clip_predicted_image": "clip_sample",
    }
    obsolete_keys: ClassVar[frozenset[str]] = frozenset({"tensor_format"})


class Toy(ConfigMixin):
    config_class = ToyConfig
    config_name = "toy_config.json"


def test_defaults_and_keywords() -> None:
    toy = Toy(num_train_timesteps=10)
    assert toy.config.num_train_timesteps == 10
    assert toy.config.beta_schedule == "linear"


def test_unknown_constructor_field_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="bogus"):
        Toy(bogus=1)


def test_round_trip_writes_format_markers(tmp_path) -> None:
    toy = Toy(num_train_timesteps=7, block_out_channels=(8, 16, 32))
    toy.save_config(tmp_path)
    data = json.loads((tmp_path / "toy_config.json").read_text())
    assert data["_class_name"] == "Toy"
    assert "_diffusers_version" in data and "_diffusers_hub_version" in data
    assert data["block_out_channels"] == [8, 16, 32]
    again = Toy.from_config(tmp_path)
    assert again.config == toy.config


def test_legacy_and_obsolete_keys_load_quietly(tmp_path, caplog) -> None:
    (tmp_path / "toy_config.json").write_text(
        json.dumps({"timesteps": 50, "clip_predicted_image": False, "tensor_format": "np"})
    )
    with caplog.at_level(logging.WARNING):
        toy = Toy.from_config(tmp_path)
    assert toy.config.num_train_timesteps == 50
    assert toy.config.clip_sample is False
    assert not caplog.records


def test_unknown_keys_from_a_file_warn_once_naming_them(tmp_path, caplog) -> None:
    (tmp_path / "toy_config.json").write_text(json.dumps({"foo": 1, "bar": 2}))
    with caplog.at_level(logging.WARNING):
        Toy.from_config(tmp_path)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "bar, foo" in warnings[0].getMessage()
    assert "toy_config.json" in warnings[0].getMessage()


def test_invalid_value_names_file_field_value_and_allowed(tmp_path) -> None:
    path = tmp_path / "toy_config.json"
    path.write_text(json.dumps({"beta_schedule": "cubic"}))
    with pytest.raises(ConfigError) as info:
        Toy.from_config(tmp_path)
    message = str(info.value)
    assert str(path) in message
    assert "beta_schedule" in message
    assert "'cubic'" in message
    assert "linear" in message and "scaled_linear" in message


def test_malformed_json_names_the_file_and_line(tmp_path) -> None:
    path = tmp_path / "toy_config.json"
    path.write_text('{"num_train_timesteps": 10,\n "clip_sample": }')
    with pytest.raises(ConfigError, match=r"toy_config.json: malformed JSON at line 2"):
        Toy.from_config(tmp_path)


def test_missing_config_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="toy_config.json"):
        Toy.from_config(tmp_path)


def test_swap_between_components_drops_foreign_keys_quietly(caplog) -> None:
    class OtherConfig(ComponentConfig):
        num_train_timesteps: int = 1000
        variance_type: str = "fixed_small"

    class Other(ConfigMixin):
        config_class = OtherConfig

    other = Other(num_train_timesteps=123, variance_type="learned")
    with caplog.at_level(logging.WARNING):
        toy = Toy.from_config(other.config, clip_sample=False)
    assert toy.config.num_train_timesteps == 123
    assert toy.config.clip_sample is False
    assert not caplog.records


def test_seed_style_tensor_format_override_is_accepted() -> None:
    toy = Toy.from_config({"num_train_timesteps": 20}, tensor_format="pt")
    assert toy.config.num_train_timesteps == 20
