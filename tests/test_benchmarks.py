"""The benchmarks' CPU modes run end to end (their figures are not asserted)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")
def test_cuda_bench_runs_on_cpu_at_toy_size(tmp_path: Path) -> None:
    bench = _load("cuda_bench")
    out = tmp_path / "rows.json"
    args = ["--device", "cpu", "--dtypes", "fp32", "--modes", "eager", "--repeats", "1"]
    rows = bench.run([*args, "--gen-repeats", "1", "--json", str(out)])
    assert [r["case"] for r in json.loads(out.read_text())] == [r["case"] for r in rows]
    assert [(r["case"], r["batch"]) for r in rows] == [
        ("ldm-unet", 2),
        ("cifar10-unet", 1),
        ("cifar10-unet", 4),
        ("ldm-generate", 1),
    ]
    for row in rows:
        assert row["ours_ms"] > 0 and row["diffusers_ms"] > 0 and math.isfinite(row["ratio"])
        assert row["max_abs_diff"] < 1e-3, row  # same weights: the libraries agree


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")
def test_bench_unet_times_each_model_alone() -> None:
    pytest.importorskip("diffusers")
    bench = _load("bench_unet")
    for which in ("ours", "diffusers"):
        (row,) = bench.time_alone(which, (1,), repeats=2, warmup=1)
        assert row["model"] == which and row["batch"] == 1
        assert row["ms"] > 0 and row["faults"] >= 0
