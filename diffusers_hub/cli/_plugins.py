"""``diffusers-hub plugins list|info|doctor|new|validate``; ``list`` and ``info`` import no plugin."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from diffusers_hub import registry
from diffusers_hub._version import PLUGIN_API_VERSION, __version__
from diffusers_hub.errors import RegistryError

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
            message = (
                f"the hook modules of {name} import torch at import time; hook modules must stay "
                "import-light (import heavy modules inside the hooks)"
            )
            problems.append({"category": "slow-hooks", "distribution": name, "message": message})
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


# -- parser -----------------------------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``plugins`` and its subcommands to the ``diffusers-hub`` subparsers ``sub``."""
    plugins = sub.add_parser("plugins", help="list, inspect and check installed plugins")
    plugins.set_defaults(func=lambda _args: plugins.print_help())
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
