"""The ``diffusers-hub`` command line.

Commands::

    diffusers-hub plugins list [--json] [--all] [--kind KIND]
    diffusers-hub plugins info NAME [--kind KIND] [--load] [--json]
    diffusers-hub plugins doctor [--json] [--no-timing]
    diffusers-hub plugins new NAME [--kind KIND] [--dir PATH] [--author NAME] [--email ADDRESS]
    diffusers-hub plugins validate PATH [--imports] [--json]
    diffusers-hub generate PIPELINE [--model PATH_OR_REPO] [--prompt TEXT] [--steps N] [--seed S]
                           [--batch-size B] [--out FILE] [--device D]
    diffusers-hub demo [--out FILE] [--samples N] [--ddpm-steps N] [--ddim-steps N] [--ldm-steps N]
                       [--seed S] [--device D] [--threads T]
    diffusers-hub sample PIPELINE --num-samples N --out-dir DIR [--batch-size B] [--seed S] [--npz]
                         [--prompts FILE] [--mels DIR] [--batch-invariant]   (also under torchrun)
    diffusers-hub train NAME [ARGS...]
    diffusers-hub convert FORMAT [ARGS...]
    diffusers-hub PLUGIN-COMMAND ...

Errors print one line (``error: ...``) on stderr and exit with status 1; the global ``--debug``
flag shows the traceback instead. Importing this module is cheap: torch is imported by
``generate`` only, and plugin modules only when a command needs them (``plugins list`` and
``plugins info`` never import one).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diffusers_hub import registry
from diffusers_hub._version import PLUGIN_API_VERSION, __version__
from diffusers_hub.errors import DiffusersHubError, RegistryError

if TYPE_CHECKING:
    import PIL.Image

__all__ = ["BUILTIN_COMMANDS", "build_parser", "main"]

#: The commands of the core; plugins cannot take these names.
BUILTIN_COMMANDS = ("plugins", "generate", "demo", "sample", "train", "convert")

# -- plugins list / info ----------------------------------------------------------------------------


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in (header, *rows)
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cmd_plugins_list(args: argparse.Namespace) -> int:
    entries = registry.list(args.kind)
    shown = [e for e in entries if args.all or e.status not in ("broken", "incompatible")]
    hidden = len(entries) - len(shown)
    if args.json:
        print(json.dumps([e.to_dict() for e in shown], indent=2))
        return 0
    if not entries:
        print('no plugins installed; install one with: pip install "diffusers-hub[ddpm]"')
        return 0
    rows = [
        (
            e.kind,
            e.name,
            ", ".join(e.aliases),
            e.distribution + ("" if e.first_party else " *"),
            e.version,
            e.status,
        )
        for e in shown
    ]
    print(_table(rows, ("kind", "name", "aliases", "distribution", "version", "status")))
    if any(not e.first_party for e in shown):
        print("\n* third-party plugin")
    if hidden:
        print(
            f"\nhidden, {hidden} broken or incompatible entr{'y' if hidden == 1 else 'ies'} "
            "(`diffusers-hub plugins list --all` shows them, `diffusers-hub plugins doctor` "
            "explains):"
        )
        for e in entries:
            if e.status in ("broken", "incompatible"):
                reason = (e.error or e.status).split("; ", 1)[0]
                print(f"  {e.distribution}  {e.kind} {e.name}  {e.status}: {reason}")
    return 0


def _cmd_plugins_info(args: argparse.Namespace) -> int:
    entries = registry.lookup(args.name, args.kind)
    if not entries:
        raise RegistryError(registry.default().describe_missing(args.name, args.kind))
    failed = False
    if args.load:
        for entry in entries:
            try:
                registry.get(entry.kind, entry.qualified_id)
            except RegistryError:
                failed = True
        entries = registry.lookup(args.name, args.kind)
    if args.json:
        print(json.dumps([e.to_dict() for e in entries], indent=2))
        return 1 if failed else 0
    for i, e in enumerate(entries):
        if i:
            print()
        party = "first-party" if e.first_party else "third-party"
        print(f"{e.kind} {e.name}  ({e.distribution} {e.version}, {party})".replace("  ,", ","))
        fields = [
            ("aliases", ", ".join(e.aliases) or "-"),
            ("qualified id", e.qualified_id),
            ("object", e.value),
            ("status", e.status),
        ]
        if e.shadowed_names:
            fields.append(("reserved names", ", ".join(e.shadowed_names)))
        if e.error:
            fields.append(("error", e.error))
        for label, value in fields:
            print(f"  {label + ':':<15}{value}")
        if e.traceback and args.load:
            print("  traceback:")
            print("    " + e.traceback.rstrip().replace("\n", "\n    "))
    return 1 if failed else 0


# -- plugins doctor ---------------------------------------------------------------------------------

# Run in a fresh interpreter per plugin distribution: times its hook modules and its components.
_DOCTOR_PROBE = r"""
import json, sys, time
from diffusers_hub import registry
reg = registry.default()
name = sys.argv[1]
result = {"distribution": name, "errors": [], "hook_errors": [], "hook_s": 0.0,
          "import_s": 0.0, "hooks_import_torch": False}
dist = next(d for d in reg.plugin_distributions() if d.name == name)
import importlib
had_torch = "torch" in sys.modules
t0 = time.perf_counter()
for module in dist.hook_modules:
    try:
        importlib.import_module(module)
    except Exception as exc:
        result["hook_errors"].append(f"hook module {module} of {name} failed to import: "
                                     f"{type(exc).__name__}: {exc}")
result["hook_s"] = time.perf_counter() - t0
result["hooks_import_torch"] = (not had_torch) and "torch" in sys.modules
t0 = time.perf_counter()
for entry in reg.list():
    if entry.distribution != name:
        continue
    try:
        reg.get(entry.kind, entry.qualified_id)
    except Exception as exc:
        result["errors"].append(str(exc))
result["import_s"] = time.perf_counter() - t0
print(json.dumps(result))
"""


def _probe(name: str, timeout: float) -> dict[str, Any]:
    from diffusers_hub.plugin_check import run_probe

    start = time.perf_counter()
    result = run_probe(_DOCTOR_PROBE, name, timeout=timeout)
    if "probe_error" in result:
        return {"distribution": name, "errors": [result["probe_error"]]}
    result["wall_s"] = time.perf_counter() - start
    return result


def _cmd_plugins_doctor(args: argparse.Namespace) -> int:
    dists = registry.plugin_distributions()
    problems = [
        {"category": p.category, "distribution": p.distribution, "message": p.message}
        for p in registry.problems()
    ]
    probes: dict[str, dict[str, Any]] = {}
    to_probe = [d.name for d in dists if d.compatible and not d.origin.endswith("pyproject.toml")]
    if args.timing and to_probe:
        workers = max(1, min(4, os.cpu_count() or 1, len(to_probe)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(lambda n: _probe(n, args.timeout), to_probe):
                probes[result["distribution"]] = result
    for name, result in probes.items():
        for error in result.get("errors", []):
            problems.append({"category": "broken", "distribution": name, "message": error})
        for error in result.get("hook_errors", []):
            problems.append({"category": "hook", "distribution": name, "message": error})
        if result.get("hooks_import_torch"):
            problems.append(
                {
                    "category": "slow-hooks",
                    "distribution": name,
                    "message": f"the hook modules of {name} import torch at import time; hook "
                    "modules must stay import-light (import heavy modules inside the hooks)",
                }
            )
    if args.json:
        report = {
            "diffusers_hub": __version__,
            "plugin_api": PLUGIN_API_VERSION,
            "distributions": [
                {
                    "name": d.name,
                    "version": d.version,
                    "first_party": d.first_party,
                    "api_versions": [*d.api_versions],
                    "compatible": d.compatible,
                    "origin": d.origin,
                    **{k: v for k, v in probes.get(d.name, {}).items() if k != "distribution"},
                }
                for d in dists
            ],
            "problems": problems,
        }
        print(json.dumps(report, indent=2))
        return 1 if problems else 0
    print(
        f"diffusers-hub {__version__} (plugin API {PLUGIN_API_VERSION}), "
        f"Python {sys.version.split()[0]}"
    )
    rows = []
    for d in dists:
        probe = probes.get(d.name, {})
        if not d.compatible:
            state = "incompatible"
        elif probe.get("errors") or probe.get("hook_errors"):
            state = "broken"
        else:
            state = "ok"
        timing = (
            f"{probe['import_s']:.2f} s (hooks {probe['hook_s']:.3f} s)"
            if "import_s" in probe
            else "-"
        )
        rows.append(
            (
                d.name,
                d.version,
                "first-party" if d.first_party else "third-party",
                ", ".join(d.api_versions) or "none",
                state,
                timing,
            )
        )
    if rows:
        print(_table(rows, ("distribution", "version", "source", "API", "state", "import time")))
        if args.timing:
            print(
                "(import time: a fresh interpreter importing the plugin's modules, deps included)"
            )
    else:
        print("no plugin distributions installed")
    if not problems:
        print("\nno problems found")
        return 0
    print(f"\n{len(problems)} problem{'s' if len(problems) != 1 else ''}:")
    for p in problems:
        print(f"  [{p['category']}] {p['message']}")
    return 1


# -- plugins new / validate -------------------------------------------------------------------------


def _cmd_plugins_new(args: argparse.Namespace) -> int:
    from diffusers_hub import plugin_kit

    names = plugin_kit.plugin_names(args.name, args.kind)
    dest = Path(args.dir) / names["distribution"]
    written = plugin_kit.render_template(
        dest,
        args.name,
        args.kind,
        author=args.author,
        email=args.email,
        description=args.description,
        template=args.template,
    )
    print(f"created {dest} ({len(written)} files), registering the {args.kind} {names['name']!r}")
    print(f"  package:      {names['package']}/{names['module']}.py ({names['class_name']})")
    print(f"  distribution: {names['distribution']}")
    print("next steps:")
    print(f"  cd {dest}")
    print('  pip install -e ".[test]"')
    print("  python -m pytest")
    print("  diffusers-hub plugins validate . --imports")
    return 0


def _cmd_plugins_validate(args: argparse.Namespace) -> int:
    from diffusers_hub import plugin_kit

    findings = plugin_kit.validate_plugin(args.path, imports=args.imports)
    errors = [f for f in findings if f.level == "error"]
    if args.json:
        report = {
            "path": str(args.path),
            "imports": args.imports,
            "ok": not errors,
            "findings": [f.to_dict() for f in findings],
        }
        print(json.dumps(report, indent=2))
        return 1 if errors else 0
    for finding in findings:
        print(finding)
    warnings = len(findings) - len(errors)
    checked = (
        "metadata and imports" if args.imports else "metadata only; --imports also imports objects"
    )
    if errors:
        print(f"\n{args.path}: {len(errors)} error(s), {warnings} warning(s) ({checked})")
        return 1
    print(f"{args.path}: ok, {warnings} warning(s) ({checked})")
    return 0


# -- generate ---------------------------------------------------------------------------------------


def _to_pil_list(images: Any) -> list[PIL.Image.Image]:
    import numpy as np
    import PIL.Image

    if isinstance(images, list) and all(isinstance(i, PIL.Image.Image) for i in images):
        return images
    array = (
        images.detach().cpu().float().numpy() if hasattr(images, "detach") else np.asarray(images)
    )
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise DiffusersHubError(f"cannot save images of shape {array.shape}")
    if array.shape[1] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = array.transpose(0, 2, 3, 1)  # (B, C, H, W) -> (B, H, W, C)
    array = (np.clip(array, 0.0, 1.0) * 255).round().astype("uint8")
    return [PIL.Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in array]


def image_grid(images: Sequence[PIL.Image.Image], gap: int = 1) -> PIL.Image.Image:
    """Paste images into a near-square grid (row-major), all cells the size of the first image.

    Cells are separated by ``gap`` pixels of grey when there is more than one image.
    """
    import PIL.Image

    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    gap = gap if len(images) > 1 else 0
    width, height = images[0].size
    mode = images[0].mode
    fill = 128 if mode == "L" else (128,) * len(mode)
    grid = PIL.Image.new(mode, (cols * (width + gap) - gap, rows * (height + gap) - gap), fill)
    for i, image in enumerate(images):
        x, y = (i % cols) * (width + gap), (i // cols) * (height + gap)
        grid.paste(image.convert(mode), (x, y))
    return grid


def _write_audio(audios: Any, out: Path, rate: int) -> list[Path]:
    import numpy as np
    from scipy.io import wavfile

    array = (
        audios.detach().cpu().float().numpy() if hasattr(audios, "detach") else np.asarray(audios)
    )
    if array.ndim == 1:
        array = array[None]
    paths = []
    for i, item in enumerate(array):
        data = np.asarray(item, dtype=np.float32)
        if data.ndim == 2:  # (channels, samples) -> (samples, channels)
            data = data[0] if data.shape[0] == 1 else data.T
        path = out if len(array) == 1 else out.with_name(f"{out.stem}-{i}{out.suffix}")
        wavfile.write(path, rate, np.clip(data, -1.0, 1.0))
        paths.append(path)
    return paths


def read_wav(path: str | Path) -> tuple[int, Any]:
    """(sampling rate, (L,) float32 mono samples in [-1, 1]) of a WAV file (``scipy.io.wavfile``).

    Integer PCM is scaled by its full range; several channels are averaged.

    Raises:
        DiffusersHubError: the file is missing or not a readable WAV file.
    """
    import numpy as np
    from scipy.io import wavfile

    try:
        rate, data = wavfile.read(path)
    except (OSError, ValueError) as exc:
        raise DiffusersHubError(f"{path}: cannot be read as a WAV file ({exc})") from None
    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        data = (data.astype(np.float64) - (info.max + info.min + 1) / 2) / (
            (info.max + 1 - info.min) / 2
        )
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        data = data.mean(axis=1)
    return int(rate), data


def _input_options(args: argparse.Namespace) -> dict[str, tuple[Any, str]]:
    """The pipeline inputs read from ``--mel`` (a .npy array) and ``--wav`` (a WAV file)."""
    import numpy as np

    options: dict[str, tuple[Any, str]] = {}
    if getattr(args, "mel", None) is not None:
        try:
            mel = np.load(args.mel, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DiffusersHubError(
                f"--mel {args.mel}: cannot be read as a .npy array ({exc}); save the "
                "spectrogram with numpy.save"
            ) from None
        options["mel_spectrogram"] = (mel, "--mel")
    if getattr(args, "wav", None) is not None:
        rate, samples = read_wav(args.wav)
        options["audio"] = (samples, "--wav")
        options["audio_sampling_rate"] = (rate, "--wav")
    return options


def _call_options(pipe: Any, args: argparse.Namespace, generator: Any) -> dict[str, Any]:
    import inspect

    params = inspect.signature(pipe.__call__).parameters
    open_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    options: dict[str, Any] = {"generator": generator}
    wanted = {
        "num_inference_steps": (args.steps, "--steps"),
        "prompt": (args.prompt, "--prompt"),
        "guidance_scale": (args.guidance_scale, "--guidance-scale"),
        "eta": (args.eta, "--eta"),
    }
    batch = args.batch_size if args.batch_size != 1 else None
    # Text pipelines name the batch "images per prompt".
    batch_key = "num_images_per_prompt" if "num_images_per_prompt" in params else "batch_size"
    wanted[batch_key] = (batch, "--batch-size")
    wanted.update(_input_options(args))
    for key, (value, flag) in wanted.items():
        if value is None:
            continue
        if key not in params and not open_kwargs:
            raise DiffusersHubError(f"{type(pipe).__name__} does not take {flag} ({key})")
        options[key] = value
    output_type = params.get("output_type")
    if output_type is None or output_type.default in ("pil", inspect.Parameter.empty):
        options["output_type"] = "pil"
    return options


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def _device(text: str) -> str:
    """argparse type: a torch device this machine has (``cpu``, ``cuda:0``, ``mps``)."""
    from diffusers_hub.checks import check_device

    try:
        check_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _cmd_generate(args: argparse.Namespace) -> int:
    pipeline_cls = registry.pipeline(args.pipeline)
    folder = args.model if args.model is not None else registry.demo_checkpoint(args.pipeline)
    if args.model is None and not Path(folder).is_dir():
        raise FileNotFoundError(f"the demo weights folder {folder} of {args.pipeline!r} is missing")
    import torch

    pipe = pipeline_cls.from_pretrained(folder)
    if args.device is not None:
        pipe = pipe.to(args.device)
    generator = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    output = pipe(**_call_options(pipe, args, generator))
    took = f"sampled in {time.perf_counter() - start:.1f} s"
    if getattr(output, "images", None) is not None:
        out = Path(args.out or f"{args.pipeline}.png")
        images = _to_pil_list(output.images)
        out.parent.mkdir(parents=True, exist_ok=True)
        image_grid(images).save(out)
        print(f"wrote {out} ({len(images)} image{'s' if len(images) != 1 else ''}, {took})")
        return 0
    if getattr(output, "audios", None) is not None:
        out = Path(args.out or f"{args.pipeline}.wav")
        out.parent.mkdir(parents=True, exist_ok=True)
        rate = int(getattr(output, "sampling_rate", 22050) or 22050)
        for path in _write_audio(output.audios, out, rate):
            print(f"wrote {path} ({rate} Hz, {took})")
        return 0
    raise DiffusersHubError(
        f"{type(pipe).__name__} returned {type(output).__name__}, which has neither .images nor .audios"
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    import torch

    from diffusers_hub import demo

    if args.threads < 0:
        raise DiffusersHubError(
            f"--threads must be 0 (torch's default) or more, got {args.threads}"
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rows = demo.sample_rows(
        samples=args.samples,
        ddpm_steps=args.ddpm_steps,
        ddim_steps=args.ddim_steps,
        ldm_steps=args.ldm_steps,
        seed=args.seed,
        device=args.device,
        report=lambda line: print(line, flush=True),
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    picture = demo.compose(rows)
    picture.save(out)
    sampling = sum(row.seconds for row in rows)
    print(
        f"wrote {out} ({picture.width}x{picture.height} px): {sampling:.1f} s of sampling, "
        f"{time.perf_counter() - start:.1f} s in all"
    )
    return 0


# -- train / convert --------------------------------------------------------------------------------


def _load_reference(reference: str, what: str) -> Callable[[list[str]], int | None]:
    module_name, sep, attr = reference.partition(":")
    if not sep or not module_name or not attr:
        raise RegistryError(
            f"the {what} reference {reference!r} is not of the form 'module:function'"
        )
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise RegistryError(f"the {what} {reference!r} is not callable")
    return obj  # type: ignore[no-any-return]


def _dispatch(hook_name: str, what: str, key: str, rest: list[str]) -> int:
    reference = registry.hook_mapping_value(hook_name, key, what)
    function = _load_reference(reference, what)
    status = function(rest)
    return 0 if status is None else int(status)


def _cmd_train(args: argparse.Namespace) -> int:
    return _dispatch("diffusers_hub_trainers", "trainer", args.name, args.args)


def _cmd_convert(args: argparse.Namespace) -> int:
    return _dispatch("diffusers_hub_converters", "converter", args.format, args.args)


# -- parser -----------------------------------------------------------------------------------------


def _add_plugin_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    try:
        pm = registry.hooks()
    except DiffusersHubError as exc:
        print(f"warning: plugin commands unavailable: {exc}", file=sys.stderr)
        return
    plugins = pm.list_name_plugin()  # registration order
    for name, plugin in plugins:
        # one plugin at a time, so that a failing plugin costs only its own commands
        others = [p for _, p in plugins if p is not plugin]
        add = pm.subset_hook_caller("diffusers_hub_add_commands", remove_plugins=others)
        try:
            add(subparsers=subparsers)
        except Exception as exc:
            print(
                f"warning: the commands of plugin {name} were not added: "
                f"{type(exc).__name__}: {exc}",
                file=sys.stderr,
            )


def build_parser(*, plugin_commands: bool = True) -> argparse.ArgumentParser:
    """The ``diffusers-hub`` argument parser.

    Args:
        plugin_commands: also add the subcommands contributed by plugins (this imports the
            plugins' hook modules).
    """
    parser = argparse.ArgumentParser(
        prog="diffusers-hub",
        description="Run diffusion pipelines and manage diffusers-hub plugins.",
    )
    parser.add_argument("--version", action="version", version=f"diffusers-hub {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    plugins = sub.add_parser("plugins", help="list, inspect and check installed plugins")
    plugins.set_defaults(func=lambda _args: _print_help(plugins))
    psub = plugins.add_subparsers(dest="plugins_command", metavar="SUBCOMMAND")
    p_list = psub.add_parser("list", help="list registered components (imports no plugin)")
    p_list.add_argument("--json", action="store_true", help="machine-readable output")
    p_list.add_argument("--all", action="store_true", help="include broken/incompatible entries")
    p_list.add_argument("--kind", choices=registry.KINDS, help="only this kind")
    p_list.set_defaults(func=_cmd_plugins_list)
    p_info = psub.add_parser("info", help="show one name's entries (imports nothing)")
    p_info.add_argument("name", help="a bare name or a qualified id DISTRIBUTION/NAME")
    p_info.add_argument("--kind", choices=registry.KINDS, help="only this kind")
    p_info.add_argument("--load", action="store_true", help="import and validate it too")
    p_info.add_argument("--json", action="store_true", help="machine-readable output")
    p_info.set_defaults(func=_cmd_plugins_info)
    p_doc = psub.add_parser(
        "doctor", help="report conflicts, broken and incompatible plugins, import times"
    )
    p_doc.add_argument("--json", action="store_true", help="machine-readable output")
    p_doc.add_argument(
        "--no-timing",
        dest="timing",
        action="store_false",
        help="skip importing each plugin in a subprocess",
    )
    p_doc.add_argument(
        "--timeout", type=float, default=300.0, help="seconds allowed per plugin import"
    )
    p_doc.set_defaults(func=_cmd_plugins_doctor)
    p_new = psub.add_parser("new", help="create a new plugin project from the template")
    p_new.add_argument("name", help="the plugin's short name, e.g. my-solver")
    p_new.add_argument(
        "--kind",
        choices=("scheduler", "model", "pipeline", "processor"),
        default="scheduler",
        help="the kind of the example component (default: scheduler)",
    )
    p_new.add_argument(
        "--dir", default=".", help="where to create the project folder (default: here)"
    )
    p_new.add_argument("--author", help="author name for pyproject.toml")
    p_new.add_argument("--email", help="author e-mail for pyproject.toml")
    p_new.add_argument("--description", help="one-line description")
    p_new.add_argument("--template", help="a template folder of your own")
    p_new.set_defaults(func=_cmd_plugins_new)
    p_val = psub.add_parser(
        "validate", help="check a plugin project folder (entry points, API version, names)"
    )
    p_val.add_argument("path", help="the plugin's project folder (holding pyproject.toml)")
    p_val.add_argument(
        "--imports", action="store_true", help="also import every object and check its protocol"
    )
    p_val.add_argument("--json", action="store_true", help="machine-readable output")
    p_val.set_defaults(func=_cmd_plugins_validate)

    gen = sub.add_parser("generate", help="run a pipeline and save its output")
    gen.add_argument("pipeline", help="pipeline name (e.g. ddpm, ddim, latent-diffusion)")
    gen.add_argument(
        "--model", help="local folder or Hub repo id (default: the plugin's embedded demo weights)"
    )
    gen.add_argument("--prompt", help="text prompt (text-conditioned pipelines)")
    gen.add_argument("--steps", type=_positive_int, help="number of inference steps")
    gen.add_argument(
        "--guidance-scale", type=float, help="classifier-free guidance (text pipelines)"
    )
    gen.add_argument("--eta", type=float, help="DDIM eta (0 deterministic, 1 ancestral)")
    gen.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    gen.add_argument(
        "--batch-size", type=_positive_int, default=1, help="how many samples (default 1)"
    )
    gen.add_argument("--out", help="output file (default: PIPELINE.png, or PIPELINE.wav for audio)")
    source = gen.add_mutually_exclusive_group()
    source.add_argument("--mel", help="a .npy mel spectrogram to vocode (vocoder pipelines)")
    source.add_argument("--wav", help="a WAV file to analyse and resynthesise (vocoders)")
    gen.add_argument("--device", type=_device, help="torch device, e.g. cpu or cuda")
    gen.set_defaults(func=_cmd_generate)

    demo = sub.add_parser(
        "demo", help="sample DDPM, DDIM and latent diffusion from the demo weights into one PNG"
    )
    demo.add_argument("--out", default="demo.png", help="output PNG (default: demo.png)")
    demo.add_argument("--samples", type=int, default=8, help="images per row (default 8)")
    demo.add_argument("--ddpm-steps", type=int, default=250, help="DDPM steps (default 250)")
    demo.add_argument("--ddim-steps", type=int, default=50, help="DDIM steps (default 50)")
    demo.add_argument(
        "--ldm-steps", type=int, default=50, help="latent-diffusion DDIM steps (default 50)"
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--device", help="torch device, e.g. cpu or cuda")
    demo.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for torch (default 1: the demo models are tiny; 0: torch's default)",
    )
    demo.set_defaults(func=_cmd_demo)
    _add_sample_parser(sub)

    train = sub.add_parser("train", help="run a plugin's training command")
    train.add_argument("name", help="trainer name (see the plugins' docs)")
    train.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the trainer")
    train.set_defaults(func=_cmd_train)

    conv = sub.add_parser("convert", help="convert an original checkpoint to diffusers format")
    conv.add_argument("format", help="source format name (see the plugins' docs)")
    conv.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the converter")
    conv.set_defaults(func=_cmd_convert)

    if plugin_commands:
        _add_plugin_commands(sub)
    return parser


def _add_sample_parser(sub: argparse._SubParsersAction[Any]) -> None:
    """``diffusers-hub sample``: see :mod:`diffusers_hub.sampling` and docs/sampling.md."""
    smp = sub.add_parser(
        "sample", help="draw N samples into a folder (resumable; runs under torchrun too)"
    )
    smp.add_argument("pipeline", help="pipeline name (e.g. ddpm, ddim, latent-diffusion, bddm)")
    smp.add_argument("--num-samples", type=int, required=True, help="how many samples")
    smp.add_argument("--out-dir", required=True, help="output folder (a rerun resumes it)")
    smp.add_argument("--model", help="local folder or Hub repo id (default: the demo weights)")
    smp.add_argument("--batch-size", type=int, default=8, help="indices per batch (default 8)")
    smp.add_argument("--seed", type=int, default=0, help="S: sample i is seeded by (S, i)")
    smp.add_argument("--npz", action="store_true", help="also write samples.npz (ADM layout)")
    smp.add_argument("--prompts", help="text file, one prompt per line (text pipelines)")
    smp.add_argument("--mels", help="folder of .npy log-mels or .wav files (vocoders)")
    smp.add_argument("--steps", type=int, help="number of inference steps")
    smp.add_argument("--guidance-scale", type=float, help="classifier-free guidance")
    smp.add_argument("--eta", type=float, help="DDIM eta")
    smp.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    smp.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32")
    smp.add_argument(
        "--batch-invariant",
        action="store_true",
        help="compute each sample alone: bits independent of batch size (slower)",
    )
    smp.add_argument("--compile", action="store_true", help="torch.compile the denoiser")
    smp.add_argument("--no-progress", action="store_true", help="no progress bar")
    smp.set_defaults(func=lambda args: importlib.import_module("diffusers_hub.sampling").main(args))


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def _command_of(argv: Sequence[str]) -> str | None:
    for token in argv:
        if not token.startswith("-"):
            return token
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``diffusers-hub`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    arguments = [*(sys.argv[1:] if argv is None else argv)]
    command = _command_of(arguments)
    parser = build_parser(plugin_commands=command not in BUILTIN_COMMANDS)
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    handler: Callable[[argparse.Namespace], int | None] | None = getattr(args, "func", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        status = handler(args)
    except BrokenPipeError:  # the reader went away (``diffusers-hub plugins list | head``)
        with contextlib.suppress(Exception):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        if not isinstance(exc, DiffusersHubError | OSError):
            message = f"{type(exc).__name__}: {message} (--debug shows the traceback)"
        print(f"error: {message}", file=sys.stderr)
        return 1
    return 0 if status is None else int(status)
