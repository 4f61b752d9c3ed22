"""Hand-picked hostile and careless input (issue 13): each finding with its clear error.

The generated versions of these cases are in ``test_hardening_generated.py``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from diffusers_hub import registry
from diffusers_hub.cli import main
from diffusers_hub.errors import ConfigError, SaveError, WeightsError
from diffusers_hub.hub import HubError

DDPM_DEMO = Path(registry.demo_checkpoint("ddpm"))
LDM_DEMO = Path(registry.demo_checkpoint("latent-diffusion"))
UNet2DModel = registry.model("UNet2DModel")
DDPMScheduler = registry.scheduler("DDPMScheduler")
DDIMScheduler = registry.scheduler("DDIMScheduler")
DDPMPipeline = registry.pipeline("DDPMPipeline")


def unet_config(**changes: object) -> dict[str, object]:
    data = json.loads((DDPM_DEMO / "unet" / "config.json").read_text())
    return {**data, **changes}


@pytest.fixture
def demo_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "ddpm"
    shutil.copytree(DDPM_DEMO, folder)
    return folder


@pytest.fixture(scope="module")
def ddpm_pipe():
    pipe = DDPMPipeline.from_pretrained(DDPM_DEMO)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# -- sizes are bounded before anything is allocated ------------------------------------------------


def test_huge_schedule_is_refused_before_allocating() -> None:
    with pytest.raises(ConfigError, match=r"num_train_timesteps.*less than or equal to 100000"):
        DDPMScheduler(num_train_timesteps=10**9)


@pytest.mark.parametrize(
    ("field", "value", "limit"),
    [
        ("sample_size", 10**9, "4096"),
        ("in_channels", 10**6, "8192"),
        ("layers_per_block", 10**4, "256"),
    ],
)
def test_huge_model_sizes_name_the_field_and_the_limit(field, value, limit) -> None:
    with pytest.raises(ConfigError, match=rf"'{field}' = {value}.*{limit}.*safety bound"):
        UNet2DModel.config_class.from_dict(unet_config(**{field: value}))


# -- model configs are checked for meaning ---------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"layers_per_block": -1}, "layers_per_block"),
        ({"layers_per_block": 0}, "layers_per_block"),
        ({"block_out_channels": [-8, 16, 16]}, "block_out_channels"),
        ({"norm_num_groups": 0}, "norm_num_groups"),
        ({"norm_num_groups": 3}, "norm_num_groups"),
        ({"sample_size": -5}, "sample_size"),
        ({"layers_per_block": "1"}, "layers_per_block"),
        ({"layers_per_block": True}, "layers_per_block"),
        ({"center_input_sample": 1}, "center_input_sample"),
        ({"dropout": float("nan")}, "dropout"),
    ],
)
def test_model_config_meaning(changes, field) -> None:
    with pytest.raises(ConfigError, match=field):
        UNet2DModel.config_class.from_dict(unet_config(**changes), source="config.json")


def test_norm_groups_that_do_not_divide_say_what_would() -> None:
    with pytest.raises(ConfigError, match=r"norm_num_groups=3 must divide.*such as 32"):
        UNet2DModel.config_class.from_dict(unet_config(norm_num_groups=3))


def test_config_of_another_class_is_refused(demo_copy: Path) -> None:
    config = demo_copy / "unet" / "config.json"
    config.write_text(json.dumps(unet_config(_class_name="VQModel")))
    with pytest.raises(ConfigError, match=r"'_class_name' is 'VQModel', but UNet2DModel"):
        UNet2DModel.from_pretrained(demo_copy, subfolder="unet")


# -- numbers that passed silently ------------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_named(demo_copy: Path, bad: float) -> None:
    from safetensors.torch import load_file, save_file

    path = demo_copy / "unet" / "diffusion_pytorch_model.safetensors"
    state = load_file(path)
    state["conv_in.bias"][1] = bad
    save_file(state, path)
    with pytest.raises(WeightsError, match=r"safetensors: tensor 'conv_in.bias' holds 1 NaN"):
        UNet2DModel.from_pretrained(demo_copy, subfolder="unet")


def test_integer_weights_for_float_parameters_are_refused(demo_copy: Path) -> None:
    from safetensors.torch import load_file, save_file

    path = demo_copy / "unet" / "diffusion_pytorch_model.safetensors"
    state = load_file(path)
    state["conv_in.bias"] = state["conv_in.bias"].to(torch.int32)
    save_file(state, path)
    with pytest.raises(WeightsError, match=r"conv_in.bias \(file torch.int32, model torch.float32"):
        UNet2DModel.from_pretrained(demo_copy, subfolder="unet")


def test_decreasing_betas_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"beta_end=0.0001 is smaller than beta_start=0.02"):
        DDPMScheduler(beta_start=0.02, beta_end=0.0001)


@pytest.mark.parametrize("steps", [2.5, True, "10"])
def test_set_timesteps_needs_an_integer(steps) -> None:
    with pytest.raises(TypeError, match="num_inference_steps must be an integer"):
        DDPMScheduler().set_timesteps(steps)


@pytest.mark.parametrize("scheduler_cls", [DDPMScheduler, DDIMScheduler])
@pytest.mark.parametrize("t", [5, 5000, -1])
def test_step_outside_the_schedule_is_a_clear_error(scheduler_cls, t) -> None:
    scheduler = scheduler_cls()
    scheduler.set_timesteps(10)
    x = torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match=rf"timestep {t} is (not in|outside)"):
        scheduler.step(x, t, x)


# -- raw errors now name the option ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"batch_size": -1}, ValueError, "batch_size must be >= 1, got -1"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1, got 0"),
        ({"generator": "cuda:7"}, TypeError, "generator must be a torch.Generator"),
        ({"num_inference_steps": 0}, ValueError, "num_inference_steps must be between 1 and 1000"),
        ({"num_inference_steps": 1001}, ValueError, "between 1 and 1000, got 1001"),
        ({"output_type": "jpeg"}, ValueError, "output_type='jpeg' is not one of"),
        ({"callback_steps": 0}, ValueError, "callback_steps must be >= 1"),
    ],
)
def test_pipeline_arguments_are_checked_first(ddpm_pipe, options, error, message) -> None:
    with pytest.raises(error, match=message):
        ddpm_pipe(**{"num_inference_steps": 1, **options})


class CudaGenerator(torch.Generator):
    """A generator that reports a CUDA device (a CPU-only machine cannot make a real one)."""

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        return torch.device("cuda", 0)


def test_generator_on_another_device_is_named(ddpm_pipe) -> None:
    with pytest.raises(ValueError, match="generator is on cuda:0 but the pipeline runs on cpu"):
        ddpm_pipe(num_inference_steps=1, generator=CudaGenerator())
    with pytest.raises(ValueError, match="got a list of 2 generators for 1 samples"):
        ddpm_pipe(num_inference_steps=1, generator=[torch.Generator()] * 2)


@pytest.fixture(scope="module")
def ldm_pipe():
    pipe = registry.pipeline("LDMTextToImagePipeline").from_pretrained(LDM_DEMO)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("prompt", [None, 123, [], ["a", 1]])
def test_prompt_of_the_wrong_type(ldm_pipe, prompt) -> None:
    with pytest.raises(TypeError, match="prompt must be a string or a non-empty list of strings"):
        ldm_pipe(prompt, num_inference_steps=1)


def test_long_prompt_warns_that_it_is_cut(ldm_pipe, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        ldm_pipe(" ".join(["squirrel"] * 200), num_inference_steps=1, output_type="np")
    assert "LDMBert reads only the first 77" in caplog.text


def test_cli_batch_size_zero(capsys) -> None:
    assert main(["generate", "ddpm", "--batch-size", "0"]) == 2
    assert "--batch-size: must be an integer >= 1, got '0'" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cli_device_that_this_build_lacks(capsys) -> None:
    assert main(["generate", "ddpm", "--device", "cuda:3", "--steps", "1"]) == 2
    assert "--device: device 'cuda:3': this machine has no usable CUDA GPU" in (
        capsys.readouterr().err
    )


# -- folders: links out of the checkpoint are refused ---------------------------------------------


def test_component_folder_linked_outside_is_refused(tmp_path: Path, demo_copy: Path) -> None:
    outside = tmp_path / "elsewhere"
    shutil.move(demo_copy / "unet", outside)
    (demo_copy / "unet").symlink_to(outside, target_is_directory=True)
    with pytest.raises(HubError, match=r"unet is a symbolic link to .*elsewhere, outside"):
        DDPMPipeline.from_pretrained(demo_copy)


def test_config_linked_to_a_system_file_is_refused(demo_copy: Path) -> None:
    config = demo_copy / "scheduler" / "scheduler_config.json"
    config.unlink()
    config.symlink_to("/etc/passwd")
    with pytest.raises(HubError, match=r"scheduler_config.json is a symbolic link to /etc/passwd"):
        DDPMScheduler.from_pretrained(demo_copy)


def test_shard_index_pointing_outside_is_refused(demo_copy: Path) -> None:
    unet = demo_copy / "unet"
    (unet / "diffusion_pytorch_model.safetensors").unlink()
    index = {"weight_map": {"conv_in.weight": "../../../../etc/passwd"}}
    (unet / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(WeightsError, match=r"shard name '../../../../etc/passwd' is not a file"):
        UNet2DModel.from_pretrained(demo_copy, subfolder="unet")


def test_subfolder_leaving_the_folder_is_refused(tmp_path: Path, demo_copy: Path) -> None:
    shutil.copytree(demo_copy / "unet", tmp_path / "evil")
    with pytest.raises(HubError, match="outside the checkpoint folder"):
        UNet2DModel.from_pretrained(demo_copy, subfolder="../evil")


def test_hub_cache_blob_links_are_allowed(tmp_path: Path, demo_copy: Path) -> None:
    repo = tmp_path / "cache" / "models--org--tiny"
    snapshot = repo / "snapshots" / "abc123"
    (repo / "blobs").mkdir(parents=True)
    for path in sorted(demo_copy.rglob("*")):
        if path.is_file():
            blob = repo / "blobs" / path.name.replace(".", "_")
            shutil.copy(path, blob)
            link = snapshot / path.relative_to(demo_copy)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(blob, link.parent))
    UNet2DModel.from_pretrained(snapshot, subfolder="unet")


# -- saving -----------------------------------------------------------------------------------------


def test_read_only_parent_is_a_clear_error_and_keeps_the_checkpoint(tmp_path, monkeypatch) -> None:
    model = UNet2DModel.from_pretrained(DDPM_DEMO, subfolder="unet")
    parent = tmp_path / "ro"
    model.save_pretrained(parent / "m")
    before = {p.name: p.read_bytes() for p in (parent / "m").iterdir()}
    parent.chmod(0o555)
    if os.geteuid() == 0:  # root writes into read-only folders: fail the way the kernel would
        real_mkdir = Path.mkdir

        def read_only_mkdir(self: Path, *args: object, **kwargs: object) -> None:
            if self.parent == parent:
                raise PermissionError(13, "Permission denied", str(self))
            real_mkdir(self, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(Path, "mkdir", read_only_mkdir)
    try:
        with pytest.raises(SaveError, match=r"cannot write into .*ro \(Permission denied\)"):
            model.save_pretrained(parent / "m")
    finally:
        parent.chmod(0o755)
    assert {p.name: p.read_bytes() for p in (parent / "m").iterdir()} == before


def test_parent_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    scheduler = DDPMScheduler()
    model = UNet2DModel.from_pretrained(DDPM_DEMO, subfolder="unet")
    with pytest.raises(SaveError, match="cannot create the parent folder"):
        model.save_pretrained(tmp_path / "file" / "sub" / "m")
    assert scheduler is not None


KILLED_SAVE = textwrap.dedent(
    """
    import os, signal, sys
    import diffusers_hub.weights as weights
    from diffusers_hub import registry
    model = registry.model("UNet2DModel").from_pretrained(sys.argv[1], subfolder="unet")
    stage = sys.argv[3]
    real_save, real_swap = weights.save_state_dict, weights._swap_into_place
    def die_in_save(*args, **kwargs):
        real_save(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
    def die_between_renames(tmp, target, token):
        os.rename(target, target.parent / f".{target.name}.old-{token}")
        os.kill(os.getpid(), signal.SIGKILL)
    if stage == "save":
        weights.save_state_dict = die_in_save
    else:
        weights._exchange = lambda a, b: False
        weights._swap_into_place = die_between_renames
    model.save_pretrained(sys.argv[2])
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["save", "swap"])
def test_sigkill_mid_save_leaves_nothing_once_used_again(tmp_path: Path, stage: str) -> None:
    target = tmp_path / "m"
    UNet2DModel.from_pretrained(DDPM_DEMO, subfolder="unet").save_pretrained(target)
    done = subprocess.run(
        [sys.executable, "-c", KILLED_SAVE, str(DDPM_DEMO), str(target), stage], check=False
    )
    assert done.returncode == -signal.SIGKILL
    assert len(list(tmp_path.iterdir())) == 2  # a leftover folder (and, for "swap", no target)
    UNet2DModel.from_pretrained(target)  # loading cleans up (and restores a moved-away target)
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


CONCURRENT_SAVE = textwrap.dedent(
    """
    import sys, torch
    from diffusers_hub import registry
    model = registry.model("UNet2DModel").from_pretrained(sys.argv[1], subfolder="unet")
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float(sys.argv[3]))
    for _ in range(int(sys.argv[4])):
        model.save_pretrained(sys.argv[2])
    """
)


@pytest.mark.slow
def test_concurrent_saves_end_in_one_whole_checkpoint(tmp_path: Path) -> None:
    target = tmp_path / "m"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_SAVE, str(DDPM_DEMO), str(target), str(v), "6"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for v in (1.0, 2.0)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err  # never "exists and is not a folder"
    loaded = UNet2DModel.from_pretrained(target)
    values = {float(p.detach().flatten()[0]) for p in loaded.parameters()}
    assert values in ({1.0}, {2.0})  # one writer's whole checkpoint, never a mix
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
