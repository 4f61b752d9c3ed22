"""MkDocs hook: fill the plugin catalog page from the installed entry points at build time.

``docs/writing-plugins/catalog.md`` holds the marker ``<!-- plugin-catalog -->``; this hook
replaces it with tables generated from ``diffusers_hub.registry.list()`` and the distributions'
metadata (``importlib.metadata``). Nothing is imported but the core's registry: listing reads
metadata only, so the catalog costs nothing and cannot break on a broken plugin.

Enabled in ``mkdocs.yml``::

    hooks:
      - docs/hooks/catalog.py
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections import defaultdict
from typing import Any

log = logging.getLogger("mkdocs.hooks.catalog")

CATALOG_PAGE = "writing-plugins/catalog.md"
MARKER = "<!-- plugin-catalog -->"

#: Docs pages of the plugins in this repository, by distribution (relative to docs/); a page is
#: linked only when it exists in the build.
PLUGIN_PAGES = {
    "diffusers-hub-ddpm": "plugins/ddpm.md",
    "diffusers-hub-ddim": "plugins/ddim.md",
    "diffusers-hub-latent-diffusion": "plugins/latent-diffusion.md",
    "diffusers-hub-pndm": "contrib/pndm.md",
    "diffusers-hub-deis": "contrib/deis.md",
    "diffusers-hub-dpm-solver": "contrib/dpm-solver.md",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def _summary(distribution: str) -> tuple[str, str | None]:
    """The distribution's one-line summary and home page, from its metadata."""
    try:
        meta = importlib.metadata.metadata(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "", None
    home = meta.get("Home-page")
    for url in meta.get_all("Project-URL") or []:
        label, _, link = url.partition(",")
        if label.strip().lower() in ("homepage", "home", "source", "repository"):
            home = link.strip()
            break
    return meta.get("Summary") or "", home


def render_catalog(pages: set[str] | None = None) -> str:
    """The catalog as Markdown: one table of distributions, then one section per distribution.

    Args:
        pages: the docs pages of the build (``src_uri``s); plugin pages not among them are not
            linked. ``None`` links every known page.
    """
    from diffusers_hub import registry
    from diffusers_hub._version import PLUGIN_API_VERSION, __version__

    registry.refresh()
    entries = registry.list()
    dists = {d.name: d for d in registry.plugin_distributions()}
    by_dist: dict[str, list[Any]] = defaultdict(list)
    for entry in entries:
        by_dist[entry.distribution].append(entry)
    if not by_dist:
        return "*No plugin was installed when these docs were built.*\n"

    def order(name: str) -> tuple[bool, str]:
        first = dists[name].first_party if name in dists else False
        return (not first, name)

    names = sorted(by_dist, key=order)
    lines = [
        f"Generated from the plugins installed in the docs build (diffusers-hub {__version__}, "
        f"plugin API {PLUGIN_API_VERSION}): {len(names)} distributions, {len(entries)} components.",
        "",
        "| distribution | version | source | plugin API | components | description |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in names:
        dist = dists.get(name)
        summary, _ = _summary(name)
        counts: dict[str, int] = defaultdict(int)
        for entry in by_dist[name]:
            counts[entry.kind] += 1
        parts = ", ".join(f"{n} {k}{'s' if n > 1 else ''}" for k, n in counts.items())
        source = "first-party" if dist is not None and dist.first_party else "community"
        api = ", ".join(dist.api_versions) if dist is not None else "-"
        anchor = name.lower()
        lines.append(
            f"| [{name}](#{anchor}) | {dist.version if dist else ''} | {source} | {api or 'none'} "
            f"| {parts} | {_cell(summary)} |"
        )
    for name in names:
        dist = dists.get(name)
        summary, home = _summary(name)
        lines += ["", f"## {name}", ""]
        if summary:
            lines += [summary, ""]
        facts = [f"version {dist.version}" if dist else None]
        if dist is not None:
            facts.append("first-party" if dist.first_party else "community plugin")
            if not dist.compatible:
                facts.append(f"**incompatible**: {dist.error}")
        page = PLUGIN_PAGES.get(name)
        if page is not None and (pages is None or page in pages):
            facts.append(f"[documentation](../{page})")
        if home:
            facts.append(f"[home page]({home})")
        if dist is not None and dist.extra is not None:
            facts.append(f'install: `pip install "diffusers-hub[{dist.extra}]"`')
        elif dist is not None:
            facts.append(f"install: `pip install {name}`")
        lines += [" · ".join(f for f in facts if f), ""]
        lines += ["| kind | name | aliases | object |", "| --- | --- | --- | --- |"]
        for entry in by_dist[name]:
            aliases = ", ".join(f"`{a}`" for a in entry.aliases) or "-"
            lines.append(f"| {entry.kind} | `{entry.name}` | {aliases} | `{entry.value}` |")
    return "\n".join(lines) + "\n"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace the marker of the catalog page with the generated catalog."""
    if page.file.src_uri != CATALOG_PAGE or MARKER not in markdown:
        return markdown
    try:
        catalog = render_catalog({f.src_uri for f in files})
    except Exception as exc:  # the docs build must say why, not crash
        log.warning("the plugin catalog could not be generated: %s: %s", type(exc).__name__, exc)
        catalog = f"*The plugin catalog could not be generated: {type(exc).__name__}: {exc}*\n"
    return markdown.replace(MARKER, catalog)
