"""The registry against real entry points of temporary distributions (no importlib mocks)."""

from __future__ import annotations

import logging
import sys
import textwrap
from pathlib import Path

import pytest

from diffusers_hub import registry
from diffusers_hub.errors import PluginLoadError, RegistryError
from diffusers_hub.protocols import Scheduler, missing_members, satisfies
from diffusers_hub.registry import Registry

from .conftest import MODEL_SOURCE, SCHEDULER_SOURCE, PluginDists


def test_listing_reads_metadata_only_and_the_class_name_is_an_alias(
    plugin_dists: PluginDists,
) -> None:
    pkg = plugin_dists.scheduler_plugin("alpha-plugin", "alpha", ("alpha",), cls="AlphaScheduler")
    reg = plugin_dists.registry()

    entries = reg.list()

    assert len(entries) == 1
    entry = entries[0]
    assert (entry.kind, entry.name, entry.aliases) == ("scheduler", "alpha", ("AlphaScheduler",))
    assert (entry.distribution, entry.version, entry.status) == (
        "alpha-plugin",
        "1.0",
        "not loaded",
    )
    assert entry.value == f"{pkg}.scheduler:AlphaScheduler"
    assert entry.qualified_id == "alpha-plugin/alpha"
    assert not entry.first_party
    assert plugin_dists.imported() == []
    assert reg.list("model") == []


def test_component_imported_on_first_use_and_cached(plugin_dists: PluginDists) -> None:
    pkg = plugin_dists.scheduler_plugin("alpha-plugin", "alpha", ("alpha",), cls="AlphaScheduler")
    reg = plugin_dists.registry()

    cls = reg.scheduler("alpha")

    assert cls.__module__ == f"{pkg}.scheduler"
    assert reg.scheduler("AlphaScheduler") is cls  # alias: same entry, same object
    assert reg.get("scheduler", "alpha-plugin/AlphaScheduler") is cls
    assert reg.scheduler("alpha_plugin/alpha") is cls  # distribution names are normalised
    assert reg.list()[0].status == "loaded"
    sys.modules.pop(f"{pkg}.scheduler")
    assert reg.scheduler("alpha") is cls  # cached, not re-imported
    assert f"{pkg}.scheduler" not in sys.modules


def test_broken_plugin_is_recorded_and_others_keep_working(plugin_dists: PluginDists) -> None:
    good = plugin_dists.scheduler_plugin("good-plugin", "good", ("good",))
    bad = plugin_dists.package_name("bad")
    plugin_dists.add(
        "bad-plugin",
        {
            f"{bad}/__init__.py": "",
            f"{bad}/scheduler.py": "import a_module_that_does_not_exist_anywhere\n",
        },
        {"schedulers": {"bad": f"{bad}.scheduler:Sched"}},
    )
    reg = plugin_dists.registry()

    with pytest.raises(PluginLoadError) as info:
        reg.scheduler("bad")

    message = str(info.value)
    assert "bad-plugin/bad" in message and "ModuleNotFoundError" in message
    assert "pip install -U bad-plugin" in message  # the fix hint
    assert info.value.traceback_text is not None
    assert "a_module_that_does_not_exist_anywhere" in info.value.traceback_text
    entry = next(e for e in reg.list() if e.name == "bad")
    assert entry.status == "broken" and entry.traceback is not None
    # Asking again raises the recorded error without trying again.
    with pytest.raises(PluginLoadError, match="failed to import"):
        reg.scheduler("bad")
    assert reg.scheduler("good").__module__ == f"{good}.scheduler"
    assert [e.name for e in reg.list(include_broken=False)] == ["good"]
    assert [p.category for p in reg.problems()] == ["broken"]


def test_object_not_satisfying_its_protocol_is_broken(plugin_dists: PluginDists) -> None:
    plugin_dists.scheduler_plugin("good-plugin", "good", ("good",))
    wrong = plugin_dists.package_name("wrong")
    plugin_dists.add(
        "wrong-plugin",
        {
            f"{wrong}/__init__.py": "",
            f"{wrong}/things.py": MODEL_SOURCE.format(cls="NotAScheduler")
            + "\ndef factory():\n    return 1\n",
        },
        {
            "schedulers": {
                "wrong": f"{wrong}.things:NotAScheduler",
                "func": f"{wrong}.things:factory",
            },
            "models": {"fine-model": f"{wrong}.things:NotAScheduler"},
        },
    )
    reg = plugin_dists.registry()

    with pytest.raises(PluginLoadError, match="Scheduler protocol") as info:
        reg.scheduler("wrong")
    assert "set_timesteps" in str(info.value) and "step" in str(info.value)
    with pytest.raises(PluginLoadError, match="not a valid scheduler"):
        reg.scheduler("func")
    # The same class is a fine model, and the other plugin is unaffected.
    assert reg.model("fine-model").__name__ == "NotAScheduler"
    assert reg.scheduler("good").__name__ == "GoodSched"
    statuses = {(e.kind, e.name): e.status for e in reg.list()}
    assert statuses[("scheduler", "wrong")] == "broken"
    assert statuses[("model", "fine-model")] == "loaded"


@pytest.mark.parametrize("api", ["2", None])
def test_incompatible_api_is_reported_and_never_imported(
    plugin_dists: PluginDists, api: str | None
) -> None:
    plugin_dists.scheduler_plugin("good-plugin", "good", ("good",))
    old = plugin_dists.package_name("old")
    hooks = f"import {old}.scheduler\n"  # importing the hooks would import the plugin too
    plugin_dists.add(
        "old-plugin",
        {
            f"{old}/__init__.py": "",
            f"{old}/scheduler.py": SCHEDULER_SOURCE.format(cls="Sched"),
            f"{old}/hooks.py": hooks,
        },
        {"schedulers": {"old": f"{old}.scheduler:Sched"}, "hooks": {"old": f"{old}.hooks"}},
        api=api,
        package=old,
    )
    reg = plugin_dists.registry()

    entry = next(e for e in reg.list() if e.name == "old")
    assert entry.status == "incompatible"
    assert entry.error is not None and "plugin API" in entry.error
    with pytest.raises(PluginLoadError, match="plugin API"):
        reg.scheduler("old")
    reg.hooks()
    problems = reg.problems()

    assert [p.category for p in problems] == ["incompatible"]
    assert not any(m == old or m.startswith(old + ".") for m in sys.modules)
    assert reg.scheduler("good").__name__ == "GoodSched"
    if api is None:
        assert "declares no plugin API version" in entry.error
    else:
        assert "targets plugin API 2" in entry.error


def test_two_distributions_claiming_one_name(plugin_dists: PluginDists) -> None:
    a = plugin_dists.scheduler_plugin(
        "alpha-plugin", "alpha", ("shared", "alpha-only"), cls="AlphaSched"
    )  # two entry points of one object in one distribution do not conflict
    b = plugin_dists.scheduler_plugin("beta-plugin", "beta", ("shared",), cls="BetaSched")
    reg = plugin_dists.registry()

    with pytest.raises(RegistryError) as info:
        reg.scheduler("shared")

    message = str(info.value)
    assert "alpha-plugin" in message and "beta-plugin" in message
    assert "'alpha-plugin/shared'" in message and "'beta-plugin/shared'" in message
    assert "uninstall all but one" in message
    assert plugin_dists.imported() == []
    assert reg.scheduler("alpha-plugin/shared").__module__ == f"{a}.scheduler"
    assert reg.scheduler("beta-plugin/shared").__module__ == f"{b}.scheduler"
    assert reg.scheduler("alpha-only").__module__ == f"{a}.scheduler"
    assert [p.category for p in reg.problems()] == ["conflict"]


def test_third_party_claiming_first_party_names(
    plugin_dists: PluginDists, caplog: pytest.LogCaptureFixture
) -> None:
    # "ddim" is a first-party name by the core's extras; "fp-extra" is registered by a
    # first-party distribution (diffusers-hub-bddm, written here so the test does not depend on it).
    fp = plugin_dists.scheduler_plugin("diffusers-hub-bddm", "fp", ("fp-extra",), cls="FpSched")
    tp = plugin_dists.scheduler_plugin(
        "squatter", "squat", ("ddim", "fp-extra", "squat"), cls="Squat"
    )
    reg = plugin_dists.registry()

    with caplog.at_level(logging.WARNING, logger="diffusers_hub.registry"):
        entries = reg.list()

    warnings = [r.getMessage() for r in caplog.records]
    assert any("'ddim'" in w and "reserved" in w and "squatter/ddim" in w for w in warnings)
    assert any("'fp-extra'" in w and "diffusers-hub-bddm" in w for w in warnings)
    squatter = [e for e in entries if e.distribution == "squatter"]
    assert {n for e in squatter for n in e.shadowed_names} == {"ddim", "fp-extra"}
    assert {e.status for e in squatter} == {"not loaded"}  # "Squat" is still a bare name
    first_party = next(e for e in entries if e.distribution == "diffusers-hub-bddm")
    assert first_party.first_party

    assert reg.scheduler("fp-extra").__module__ == f"{fp}.scheduler"
    with pytest.raises(RegistryError, match="reachable only by qualified id: 'squatter/ddim'"):
        reg.scheduler("ddim")
    assert reg.scheduler("squatter/ddim").__module__ == f"{tp}.scheduler"
    assert reg.scheduler("squat").__module__ == f"{tp}.scheduler"
    assert {p.category for p in reg.problems()} == {"reserved"}


def test_fully_shadowed_entry_status(plugin_dists: PluginDists) -> None:
    plugin_dists.scheduler_plugin("squatter", "squat", ("ddim",), cls="DDIMScheduler")
    reg = plugin_dists.registry()

    (entry,) = reg.list()
    assert entry.status == "shadowed"
    assert entry.error is not None and "squatter/ddim" in entry.error


def test_known_first_party_name_not_installed_names_the_extra(plugin_dists: PluginDists) -> None:
    reg = plugin_dists.registry()  # sees no first-party plugin

    with pytest.raises(RegistryError, match=r'pip install "diffusers-hub\[glide\]"'):
        reg.pipeline("glide")
    with pytest.raises(RegistryError, match=r'pip install "diffusers-hub\[ddim\]"'):
        reg.scheduler("DDIMScheduler")
    with pytest.raises(RegistryError, match=r"diffusers-hub\[latent-diffusion\]"):
        reg.resolve_class("LDMBertModel", library="latent_diffusion")
    with pytest.raises(RegistryError, match=r"diffusers-hub\[bddm\]"):
        reg.resolve_class("SomethingNew", library="bddm")
    with pytest.raises(RegistryError, match="no installed plugin provides the pipeline 'nope'"):
        reg.pipeline("nope")


def test_unknown_names_give_helpful_errors(plugin_dists: PluginDists) -> None:
    plugin_dists.scheduler_plugin("alpha-plugin", "alpha", ("alpha-scheduler",))
    reg = plugin_dists.registry()

    with pytest.raises(RegistryError, match="Did you mean 'alpha-scheduler'"):
        reg.scheduler("alpha-schedulr")
    with pytest.raises(RegistryError, match=r"is a scheduler: use registry.scheduler"):
        reg.model("alpha-scheduler")
    with pytest.raises(RegistryError, match="no installed plugin distribution is named 'nobody'"):
        reg.scheduler("nobody/alpha-scheduler")
    with pytest.raises(RegistryError, match="provides no scheduler named 'x'"):
        reg.scheduler("alpha-plugin/x")
    with pytest.raises(RegistryError, match="unknown component kind"):
        reg.get("sampler", "alpha-scheduler")


def test_resolve_class_only_through_registered_names(plugin_dists: PluginDists) -> None:
    pkg = plugin_dists.package_name("files")
    # A module that exists on sys.path but is registered under no name: a file naming it must
    # not make the registry import it.
    plugin_dists.add(
        "files-plugin",
        {
            f"{pkg}/__init__.py": "",
            f"{pkg}/evil.py": "raise SystemExit('imported!')\n",
            f"{pkg}/scheduler.py": SCHEDULER_SOURCE.format(cls="Sched"),
        },
        {"schedulers": {"FileScheduler": f"{pkg}.scheduler:Sched"}},
    )
    reg = plugin_dists.registry()

    for library, name in [("os", "system"), (f"{pkg}.evil", "Thing"), (pkg, "evil")]:
        with pytest.raises(RegistryError, match="never imports a module named in a file"):
            reg.resolve_class(name, library=library)
    assert "os.system" not in str(sys.modules.get("__main__"))
    assert plugin_dists.imported() == []
    cls = reg.resolve_class("FileScheduler", library="diffusers")
    assert cls.__name__ == "Sched"
    with pytest.raises(RegistryError):
        reg.resolve_class("FileScheduler", kinds=("model",))


def test_resolve_class_prefers_the_named_library(plugin_dists: PluginDists) -> None:
    a = plugin_dists.scheduler_plugin("alpha-plugin", "alpha", ("Twin",))
    b = plugin_dists.scheduler_plugin("beta-plugin", "beta", ("Twin",))
    reg = plugin_dists.registry()

    assert reg.resolve_class("Twin", library=a).__module__ == f"{a}.scheduler"
    assert reg.resolve_class("Twin", library="beta-plugin").__module__ == f"{b}.scheduler"
    with pytest.raises(RegistryError, match="claimed by 2 distributions"):
        reg.resolve_class("Twin", library="diffusers")


def test_in_process_registration(plugin_dists: PluginDists) -> None:
    pkg = plugin_dists.scheduler_plugin("alpha-plugin", "alpha", ("alpha",))
    reg = plugin_dists.registry()
    namespace: dict[str, object] = {}
    exec(SCHEDULER_SOURCE.format(cls="Local"), namespace)
    local = namespace["Local"]

    entry = reg.register("scheduler", "mine", local, aliases=("MineScheduler",))

    assert entry.distribution == "<in-process>" and entry.status == "loaded"
    assert reg.scheduler("mine") is local
    assert reg.scheduler("MineScheduler") is local
    assert reg.scheduler("<in-process>/mine") is local
    assert any(e.name == "mine" and e.aliases == ("MineScheduler",) for e in reg.list())
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("scheduler", "mine", local)
    with pytest.raises(RegistryError, match="Scheduler protocol"):
        reg.register("scheduler", "not-one", object)
    with pytest.raises(RegistryError, match="invalid registry name"):
        reg.register("scheduler", "a/b", local)
    reg.unregister("scheduler", "MineScheduler")
    with pytest.raises(RegistryError):
        reg.scheduler("mine")

    # An in-process name overrides an installed one until it is unregistered.
    reg.register("scheduler", "alpha", local)
    assert reg.scheduler("alpha") is local
    reg.register("scheduler", "alpha", SchedulerStandIn, replace=True)
    assert reg.scheduler("alpha") is SchedulerStandIn
    reg.unregister("scheduler", "alpha")
    assert reg.scheduler("alpha").__module__ == f"{pkg}.scheduler"


class SchedulerStandIn:
    """A scheduler class defined in the test module."""

    order = 1
    init_noise_sigma = 1.0

    def set_timesteps(self, num_inference_steps: int | None = None) -> None: ...
    def scale_model_input(self, sample: object, timestep: int) -> object: ...
    def step(self, model_output: object, timestep: int, sample: object) -> object: ...
    def add_noise(self, x: object, noise: object, t: object) -> object: ...
    def training_target(self, x: object, noise: object, t: object) -> object: ...
    @classmethod
    def from_config(cls, config: object) -> SchedulerStandIn: ...
    @classmethod
    def from_pretrained(cls, path: str) -> SchedulerStandIn: ...
    def save_pretrained(self, directory: str) -> None: ...


def test_module_level_functions_use_the_default_registry(default_registry: Registry) -> None:
    registry.register("scheduler", "module-level", SchedulerStandIn)
    try:
        assert registry.scheduler("module-level") is SchedulerStandIn
        assert registry.get("scheduler", "module-level") is SchedulerStandIn
        assert [e.name for e in registry.list("scheduler")] == ["module-level"]
    finally:
        registry.unregister("scheduler", "module-level")
    assert registry.list() == []
    assert registry.default() is default_registry


def test_load_plugin_from_pyproject(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", [*sys.path])
    project = tmp_path / "uninstalled"
    pkg = f"dh_uninstalled_{abs(hash(str(tmp_path))) % 10**6}"
    (project / "src" / pkg).mkdir(parents=True)
    (project / "src" / pkg / "__init__.py").write_text("")
    (project / "src" / pkg / "scheduler.py").write_text(
        SCHEDULER_SOURCE.format(cls="UninstScheduler")
    )
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [project]
            name = "uninstalled-plugin"
            version = "0.3.0"

            [project.entry-points."diffusers_hub.plugin_api"]
            "1" = "{pkg}"

            [project.entry-points."diffusers_hub.schedulers"]
            uninst = "{pkg}.scheduler:UninstScheduler"

            [project.entry-points."console_scripts"]
            ignored = "{pkg}:main"
            """
        )
    )
    reg = Registry(path=[], environ={})

    entries = reg.load_plugin_from_pyproject(project)

    try:
        assert [(e.name, e.aliases, e.distribution, e.version) for e in entries] == [
            ("uninst", ("UninstScheduler",), "uninstalled-plugin", "0.3.0")
        ]
        assert pkg not in sys.modules
        assert str(project / "src") in sys.path
        assert reg.scheduler("UninstScheduler").__name__ == "UninstScheduler"
        reg.refresh()  # survives a rescan
        assert reg.scheduler("uninstalled-plugin/uninst").__name__ == "UninstScheduler"
        with pytest.raises(RegistryError, match="no such file"):
            reg.load_plugin_from_pyproject(tmp_path / "missing")
        (tmp_path / "bad.toml").mkdir()
        (tmp_path / "bad.toml" / "pyproject.toml").write_text("[project\n")
        with pytest.raises(RegistryError, match="not valid TOML"):
            reg.load_plugin_from_pyproject(tmp_path / "bad.toml")
    finally:
        for module in [m for m in sys.modules if m.startswith(pkg)]:
            del sys.modules[module]


def _broken_and_good(plugin_dists: PluginDists) -> tuple[str, str]:
    good = plugin_dists.scheduler_plugin("good-plugin", "good", ("good",))
    bad = plugin_dists.package_name("bad")
    plugin_dists.add(
        "bad-plugin",
        {f"{bad}/__init__.py": "", f"{bad}/scheduler.py": "1 / 0\n"},
        {"schedulers": {"bad": f"{bad}.scheduler:Sched"}},
    )
    return good, bad


def test_broken_plugin_fails_strict_mode_and_is_a_problem_otherwise(
    plugin_dists: PluginDists,
) -> None:
    _broken_and_good(plugin_dists)

    with pytest.raises(PluginLoadError, match="ZeroDivisionError"):
        plugin_dists.registry(DIFFUSERS_HUB_STRICT="1").scheduler("good")

    reg = plugin_dists.registry()
    with pytest.raises(PluginLoadError):
        reg.scheduler("bad")
    problems = reg.problems()
    assert [p.category for p in problems] == ["broken"]
    assert problems[0].traceback is not None


def test_strict_mode_by_environment(plugin_dists: PluginDists) -> None:
    _broken_and_good(plugin_dists)
    reg = plugin_dists.registry(DIFFUSERS_HUB_STRICT="1")

    assert len(reg.list()) == 2  # listing stays metadata-only, even in strict mode
    with pytest.raises(PluginLoadError, match="bad-plugin"):
        reg.scheduler("good")  # fails fast on the first problem anywhere
    with pytest.raises(PluginLoadError):
        reg.scheduler("good")


def test_strict_mode_passes_and_loads_everything(plugin_dists: PluginDists) -> None:
    plugin_dists.scheduler_plugin("good-plugin", "good", ("good",))
    plugin_dists.scheduler_plugin("other-plugin", "other", ("other",))
    reg = plugin_dists.registry(DIFFUSERS_HUB_STRICT="true")

    assert reg.scheduler("good").__name__ == "GoodSched"
    assert {e.status for e in reg.list()} == {"loaded"}
    assert reg.problems() == []


def test_strict_mode_fails_on_conflicts_and_reserved_names(plugin_dists: PluginDists) -> None:
    plugin_dists.scheduler_plugin("alpha-plugin", "alpha", ("shared",), cls="AlphaSched")
    plugin_dists.scheduler_plugin("beta-plugin", "beta", ("shared",), cls="BetaSched")
    with pytest.raises(RegistryError, match="claimed by 2 distributions"):
        plugin_dists.registry(DIFFUSERS_HUB_STRICT="1").scheduler("alpha-plugin/shared")

    plugin_dists.scheduler_plugin("squatter", "squat", ("squat",), cls="DDIMScheduler")
    with pytest.raises(RegistryError, match="reserved for the first-party plugin"):
        plugin_dists.registry(DIFFUSERS_HUB_STRICT="1").scheduler("alpha-plugin/shared")


def test_hooks_are_loaded_lazily_and_isolated(plugin_dists: PluginDists) -> None:
    pkg = plugin_dists.package_name("hooky")
    plugin_dists.add(
        "hooky-plugin",
        {
            f"{pkg}/__init__.py": "",
            f"{pkg}/hooks.py": """
                from diffusers_hub.hookspecs import hookimpl

                @hookimpl
                def diffusers_hub_trainers():
                    return {"hooky": "hooky.train:main"}

                @hookimpl
                def diffusers_hub_converters():
                    raise RuntimeError("converter hook exploded")
            """,
        },
        {"hooks": {"hooky": f"{pkg}.hooks"}},
    )
    broken = plugin_dists.package_name("brokenhooks")
    plugin_dists.add(
        "broken-hooks",
        {f"{broken}/__init__.py": "", f"{broken}/hooks.py": "import not_a_real_module_xyz\n"},
        {"hooks": {"broken": f"{broken}.hooks"}},
    )
    reg = plugin_dists.registry()
    reg.list()
    assert plugin_dists.imported() == []

    pm = reg.hooks()

    assert reg.hooks() is pm
    assert pm.hook.diffusers_hub_trainers() == [{"hooky": "hooky.train:main"}]
    assert (
        reg.hook_mapping_value("diffusers_hub_trainers", "hooky", "trainer") == "hooky.train:main"
    )
    with pytest.raises(RegistryError, match="no trainer named 'nope' \\(available: hooky\\)"):
        reg.hook_mapping_value("diffusers_hub_trainers", "nope", "trainer")
    with pytest.raises(PluginLoadError, match="converter hook exploded"):
        reg.hook_mapping_value("diffusers_hub_converters", "x", "converter")
    assert [(p.category, p.distribution) for p in reg.problems()] == [("hook", "broken-hooks")]
    with pytest.raises(PluginLoadError, match="not_a_real_module_xyz"):
        plugin_dists.registry(DIFFUSERS_HUB_STRICT="1").hooks()


def test_refresh_rescans(plugin_dists: PluginDists) -> None:
    reg = plugin_dists.registry()
    assert reg.list() == []
    plugin_dists.scheduler_plugin("late-plugin", "late", ("late",))
    assert reg.list() == []  # scanned once per registry
    reg.refresh()
    assert [e.name for e in reg.list()] == ["late"]


def test_lookup_and_describe_missing(plugin_dists: PluginDists) -> None:
    plugin_dists.scheduler_plugin("alpha-plugin", "alpha", ("shared",))
    plugin_dists.scheduler_plugin("beta-plugin", "beta", ("shared",))
    reg = plugin_dists.registry()

    assert sorted(e.distribution for e in reg.lookup("shared")) == ["alpha-plugin", "beta-plugin"]
    assert [e.distribution for e in reg.lookup("beta_plugin/shared")] == ["beta-plugin"]
    assert reg.lookup("shared", "model") == []
    assert "diffusers-hub[glide]" in reg.describe_missing("GLIDEPipeline")
    assert "Did you mean 'shared'" in reg.describe_missing("sharde")
    assert plugin_dists.imported() == []


def test_protocol_checks() -> None:
    namespace: dict[str, object] = {}
    exec(SCHEDULER_SOURCE.format(cls="S") + MODEL_SOURCE.format(cls="M"), namespace)
    scheduler_cls, model_cls = namespace["S"], namespace["M"]

    assert missing_members("scheduler", scheduler_cls) == []
    assert satisfies("model", model_cls)
    assert missing_members("scheduler", model_cls)[:2] == ["set_timesteps", "step"]
    assert missing_members("processor", model_cls) == ["__call__"]  # classes are always callable
    assert isinstance(scheduler_cls(), Scheduler)  # type: ignore[operator]
    assert missing_members("scheduler", scheduler_cls()) == []  # type: ignore[operator]
    assert "timesteps" not in missing_members("scheduler", scheduler_cls)
    assert missing_members("pipeline", lambda: None) == [
        "components",
        "from_pretrained",
        "save_pretrained",
        "to",
        "set_progress_bar_config",
    ]
