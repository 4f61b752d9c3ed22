"""convert glide: synthetic release checkpoints at toy size, key accounting, clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from diffusers_hub_glide.convert import main
from diffusers_hub_glide.unet import GLIDEUNetModel

from diffusers_hub import DiffusionPipeline
from diffusers_hub.errors import ConfigError, WeightsError

VOCAB = 50257  # the release tokenizer's size: converted pipelines must be able to use it


def _write(
    tmp_path: Path, toy: Any, super_res: bool, seed: int
) -> tuple[Path, Path, dict[str, Any]]:
    """A checkpoint as the release saves it (torch.save of the state dict) and its options."""
    model = GLIDEUNetModel({**toy.config(super_res), "vocab_size": VOCAB})
    toy.randomize(model, seed=seed)
    name = "upsample" if super_res else "base"
    options = {**toy.options, "super_res": super_res, "diffusion_steps": 1000}
    options["noise_schedule"] = "linear" if super_res else "squaredcos_cap_v2"
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save(state, tmp_path / f"{name}.pt")
    (tmp_path / f"{name}.json").write_text(json.dumps(options))
    return tmp_path / f"{name}.pt", tmp_path / f"{name}.json", state


@pytest.mark.slow
def test_converts_and_matches_the_restated_release(
    tmp_path: Path, toy: Any, glide_reference: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    base_pt, base_json, base_sd = _write(tmp_path, toy, False, seed=1)
    up_pt, up_json, up_sd = _write(tmp_path, toy, True, seed=2)
    out = tmp_path / "glide"
    args = ["--base", str(base_pt), "--options", str(base_json), "--upsample", str(up_pt)]
    assert main([*args, "--upsample-options", str(up_json), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{len(base_sd)} tensors consumed, 0 dropped" in printed
    assert f"{len(up_sd)} tensors consumed, 0 dropped" in printed
    index = json.loads((out / "model_index.json").read_text())
    assert set(index) >= {"unet", "scheduler", "tokenizer", "upsample_unet", "upsample_scheduler"}

    pipe: Any = DiffusionPipeline.from_pretrained(out)
    assert pipe.scheduler.config.variance_type == "learned_range"
    assert pipe.upsample_scheduler.config.beta_schedule == "linear"
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 8, 8, generator=gen)
    low = torch.rand(2, 3, 4, 4, generator=gen) * 2 - 1
    t = torch.tensor([3, 800])
    enc = pipe.tokenizer(["an oil painting of a corgi", ""], max_length=6)
    with torch.no_grad():
        for model, sd, low_res in ((pipe.unet, base_sd, None), (pipe.upsample_unet, up_sd, low)):
            ours = model(x, t, enc.input_ids, enc.attention_mask, low_res).sample
            theirs = glide_reference(
                sd, toy.options, x, t, enc.input_ids, enc.attention_mask, low_res
            )
            torch.testing.assert_close(
                ours, theirs, atol=2e-5 * float(theirs.abs().max()), rtol=1e-5
            )
    pipe.set_progress_bar_config(disable=True)
    images = pipe(
        "a corgi", num_inference_steps=2, upsample_num_inference_steps=2, output_type="np"
    )
    assert images.images.shape == (1, 8, 8, 3)


@pytest.mark.slow
def test_dropped_keys_are_named(
    tmp_path: Path, toy: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    base_pt, base_json, state = _write(tmp_path, toy, False, seed=1)
    torch.save({**state, "unemb.weight": torch.zeros(3, 32)}, base_pt)
    main(["--base", str(base_pt), "--options", str(base_json), "--out", str(tmp_path / "o")])
    printed = capsys.readouterr().out
    assert (
        f"{len(state)} tensors consumed, 1 dropped" in printed and "dropped unemb.weight" in printed
    )


def test_wrong_or_truncated_files_fail_clearly(tmp_path: Path, toy: Any) -> None:
    base_pt, base_json, state = _write(tmp_path, toy, False, seed=1)
    out = ["--out", str(tmp_path / "o")]
    data = base_pt.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match=r"cut\.pt: cannot be read.*truncated"):
        main(["--base", str(tmp_path / "cut.pt"), "--options", str(base_json), *out])
    missing = dict(state)
    del missing["middle_block.1.qkv.weight"]
    torch.save(missing, tmp_path / "missing.pt")
    with pytest.raises(WeightsError, match=r"1 keys missing \(middle_block\.1\.qkv\.weight\)"):
        main(["--base", str(tmp_path / "missing.pt"), "--options", str(base_json), *out])
    (tmp_path / "wide.json").write_text(json.dumps({**toy.options, "num_channels": 64}))
    with pytest.raises(WeightsError, match=r"shapes differ \(time_embed\.0\.weight"):
        main(["--base", str(base_pt), "--options", str(tmp_path / "wide.json"), *out])
    (tmp_path / "typo.json").write_text(json.dumps({**toy.options, "num_chanels": 64}))
    with pytest.raises(ConfigError, match="unknown GLIDE options num_chanels"):
        main(["--base", str(base_pt), "--options", str(tmp_path / "typo.json"), *out])
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    with pytest.raises(WeightsError, match="holds a Tensor"):
        main(["--base", str(tmp_path / "tensor.pt"), "--options", str(base_json), *out])
    with pytest.raises(FileNotFoundError, match="nothere.pt"):
        main(["--base", str(tmp_path / "nothere.pt"), *out])
