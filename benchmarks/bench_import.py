"""Import and CLI start-up times, beside ``import diffusers`` measured in the same run.

Targets (issue: core platform): ``import diffusers_hub`` under 0.1 s and ``diffusers-hub plugins
list`` under 0.5 s wall time with every first-party plugin installed.
"""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
import time


def wall_time(args: list[str], repeats: int = 5) -> float:
    """Median wall time in seconds of running ``args`` (after one warm-up run)."""
    subprocess.run(args, check=True, capture_output=True)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def import_time(module: str, repeats: int = 5) -> float:
    """Median seconds that ``import module`` takes in a fresh interpreter (measured inside it)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    times = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def run() -> list[tuple[str, float, str]]:
    """Rows of (what, seconds, note)."""
    py = sys.executable
    rows = [
        ("python -c pass (interpreter start)", wall_time([py, "-c", "pass"]), "floor"),
        ("import diffusers_hub", import_time("diffusers_hub"), "target < 0.1 s"),
        (
            "diffusers-hub plugins list",
            wall_time([py, "-m", "diffusers_hub", "plugins", "list"]),
            "target < 0.5 s wall",
        ),
    ]
    if importlib.util.find_spec("diffusers") is not None:
        rows.append(
            ("import diffusers (reference)", import_time("diffusers", repeats=3), "same run")
        )
    return rows


if __name__ == "__main__":
    for what, seconds, note in run():
        print(f"{what:45s} {seconds * 1000:8.1f} ms   {note}")
