"""Checks every plugin should keep: it validates, and the registry finds and loads it."""

from __future__ import annotations

from pathlib import Path

from diffusers_hub import registry
from diffusers_hub.plugin_kit import validate_plugin

from {{ package }} import {{ module }} as component_module

ROOT = Path(__file__).resolve().parents[1]


def test_plugin_validates() -> None:
    findings = validate_plugin(ROOT, imports=True)
    assert not [f for f in findings if f.level == "error"], [str(f) for f in findings]


def test_registry_finds_every_name() -> None:
    component = component_module.{{ class_name }}
    names = [
        "{{ name }}",
        "{{ class_name }}",
        # the qualified id, which always means this plugin's entry
        "{{ distribution }}/{{ name }}",
    ]
    for name in names:
        assert registry.get("{{ kind }}", name) is component, name
