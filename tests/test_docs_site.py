"""The built docs site, page by page: what a reader sees, not only what ``mkdocs build`` accepts.

``mkdocs build --strict`` passes when a snippet marker is mangled (``--8 < --"x.py"``, as
``ruff format`` rewrites it inside a ``python`` fence): the marker is then plain code, and the page
shows it instead of the script. So the site is built into a temporary folder and every page is
read back:

- no snippet marker (``--8<--`` in any spacing), no unrendered ``{{ ... }}`` or ``::: module``
  directive, no Markdown table left as ``| a | b |`` text, no TeX left as ``\\(...\\)`` text;
- every snippet a page includes has its first and last lines of code in that page's code blocks;
- Chromium (headless) renders the home page, the seed-examples page and the DDPM plugin page: the
  code blocks are in the rendered DOM, and a screenshot of each is written (the paths are
  printed; ``pytest -s`` shows them).

Chromium is the Debian package ``chromium`` (``.ci/run`` installs it). Where it is missing and
``apt-get`` can run (as root, or with password-less sudo) the test installs it; where apt cannot
run it fails with the command to run; it skips only where there is neither Chromium nor apt.

References: pymdownx.snippets syntax, https://facelessuser.github.io/pymdown-extensions/extensions/snippets/
"""

from __future__ import annotations

import html
import html.parser
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
SNIPPET_BASE = DOCS / "examples"  # mkdocs.yml: pymdownx.snippets base_path

#: A snippet marker in any spacing a formatter may leave (``--8<--``, ``--8 < --``, ``-8<-``).
MARKER = re.compile(r"-+[ \t]*8[ \t]*<[ \t]*-+")
#: A marker line in a page source, and the file it names (``"file"`` or ``"file:START:END"``).
MARKER_LINE = re.compile(r"^[ \t]*-+[ \t]*8[ \t]*<[ \t]*-+[ \t]*[\"']([^\"']+)[\"']", re.M)
TEMPLATE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
DIRECTIVE = re.compile(r"^[ \t]*:::[ \t]*[\w.]+", re.M)
TABLE_ROW = re.compile(r"^[ \t]*\|.*\|.*\|[ \t]*$", re.M)
TABLE_RULE = re.compile(r"\|[ \t]*:?-{3,}:?[ \t]*\|")
#: TeX that no renderer turned into math (docs/hooks/math.py writes MathML at build time).
TEX = re.compile(r"\\\(.+?\\\)|\\\[.+?\\\]|\$\$.+?\$\$", re.S)

#: The pages rendered in Chromium: the home page, the seed examples and one plugin page.
BROWSER_PAGES = ("index.md", "seed-examples.md", "plugins/ddpm.md")
FENCE = re.compile(r"^[ \t]*(```|~~~)", re.M)


@dataclass
class Page:
    """The text of one built HTML page: ``prose`` outside code, ``blocks`` (``<pre>``), ``inline``."""

    path: Path
    prose: str = ""
    blocks: list[str] = field(default_factory=list)
    inline: list[str] = field(default_factory=list)
    formulas: int = 0

    @property
    def all_code(self) -> str:
        return "\n".join([*self.blocks, *self.inline])


class _TextReader(html.parser.HTMLParser):
    """Splits a page's visible text into prose and code (``<pre>`` blocks; inline ``<code>``)."""

    SKIP = frozenset({"script", "style", "svg", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.prose: list[str] = []
        self.blocks: list[str] = []
        self.inline: list[str] = []
        self._skip = 0
        self._pre = 0
        self._inline_code = 0
        self._block: list[str] = []
        self.formulas = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self._skip += 1
        elif tag == "pre":
            self._pre += 1
        elif tag == "code":
            self._inline_code += 1
        elif tag == "math":
            self.formulas += 1
        elif tag in {"p", "div", "li", "tr", "br", "h1", "h2", "h3", "h4", "td", "th"}:
            self.prose.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "pre":
            self._pre = max(0, self._pre - 1)
            if not self._pre:
                self.blocks.append("".join(self._block))
                self._block = []
        elif tag == "code":
            self._inline_code = max(0, self._inline_code - 1)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._pre:
            self._block.append(data)
        elif self._inline_code:
            self.inline.append(data)
        else:
            self.prose.append(data)


def read_page(path: Path, text: str | None = None) -> Page:
    reader = _TextReader()
    reader.feed(path.read_text(encoding="utf-8") if text is None else text)
    reader.close()
    prose = html.unescape("".join(reader.prose))
    return Page(path, prose, reader.blocks, reader.inline, reader.formulas)


def site_page(site: Path, source: Path) -> Path:
    """The built page of ``source`` (a Markdown file under docs/), with mkdocs' directory URLs."""
    relative = source.relative_to(DOCS).with_suffix("")
    if relative.name in {"index", "README"}:
        return site / relative.parent / "index.html"
    return site / relative / "index.html"


def snippet_lines(reference: str) -> list[str]:
    """The non-blank lines a snippet reference includes (``file`` or ``file:START:END``)."""
    name, *span = reference.split(":")
    path = SNIPPET_BASE / name
    assert path.is_file(), f"the snippet {reference!r} names {path}, which does not exist"
    lines = path.read_text(encoding="utf-8").splitlines()
    if span:
        start = int(span[0]) if span[0] else 1
        end = int(span[1]) if len(span) > 1 and span[1] else len(lines)
        lines = lines[start - 1 : end]
    lines = [line.strip() for line in lines if line.strip()]
    assert lines, f"the snippet {reference!r} is empty"
    return lines


def snippet_references() -> Iterator[tuple[Path, str]]:
    for source in sorted(DOCS.rglob("*.md")):
        for match in MARKER_LINE.finditer(source.read_text(encoding="utf-8")):
            yield source, match.group(1)


def line_of(text: str, position: int) -> str:
    start = text.rfind("\n", 0, position) + 1
    end = text.find("\n", position)
    return text[start : end if end >= 0 else len(text)].strip()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip(
        "mkdocs", reason="the docs tools are not installed: pip install -e '.[docs]'"
    )
    folder = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(folder)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert build.returncode == 0, build.stderr[-4000:]
    return folder


@pytest.fixture(scope="module")
def pages(site: Path) -> list[Page]:
    found = [read_page(path) for path in sorted(site.rglob("*.html"))]
    assert len(found) > 20, f"only {len(found)} pages were built in {site}"
    return found


def test_no_page_shows_raw_markup(site: Path, pages: list[Page]) -> None:
    problems = []
    for page in pages:
        name = page.path.relative_to(site)
        everything = page.prose + "\n" + page.all_code
        for match in MARKER.finditer(everything):
            problems.append(f"{name}: snippet marker {line_of(everything, match.start())!r}")
        for match in TEMPLATE.finditer(page.prose):
            problems.append(f"{name}: unrendered template {match.group(0)[:60]!r}")
        for match in DIRECTIVE.finditer(page.prose):
            problems.append(f"{name}: unrendered directive {line_of(page.prose, match.start())!r}")
        for match in TEX.finditer(page.prose):
            problems.append(f"{name}: unrendered math {match.group(0)[:60]!r}")
        for pattern in (TABLE_ROW, TABLE_RULE):
            for match in pattern.finditer(page.prose):
                problems.append(f"{name}: raw table row {line_of(page.prose, match.start())!r}")
    assert not problems, "pages show raw markup:\n" + "\n".join(dict.fromkeys(problems))


def test_every_snippet_is_in_its_page(site: Path) -> None:
    references = list(snippet_references())
    assert references, "no page of docs/ includes a snippet: the check below would check nothing"
    missing = []
    for source, reference in references:
        built = site_page(site, source)
        assert built.is_file(), f"{source.relative_to(REPO)} was not built ({built} is missing)"
        code = read_page(built).all_code
        lines = snippet_lines(reference)
        for line in dict.fromkeys((lines[0], lines[-1])):
            if line not in code:
                missing.append(f"{built.relative_to(site)}: {reference}: {line!r}")
    assert not missing, "snippet lines missing from the pages' code blocks:\n" + "\n".join(missing)


# -- the rendered pages, in headless Chromium -------------------------------------------------------

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL = ["sh", "-c", "apt-get update && apt-get install -y chromium"]


def find_browser() -> str | None:
    named = os.environ.get("CHROMIUM")
    if named:
        return named
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


@pytest.fixture(scope="module")
def browser() -> str:
    """A Chromium executable; installed with apt where that can run, else a clear failure."""
    found = find_browser()
    if found:
        return found
    if shutil.which("apt-get") is None:
        pytest.skip(
            "neither Chromium nor apt-get is available: the rendered-DOM and screenshot checks "
            "need a Chromium (set CHROMIUM=/path/to/chromium)"
        )
    command = INSTALL
    if os.geteuid() != 0:
        sudo = shutil.which("sudo")
        if sudo is None or subprocess.run([sudo, "-n", "true"], capture_output=True).returncode:
            pytest.fail(
                "Chromium is missing: install it with `sudo apt-get install -y chromium` "
                "(or set CHROMIUM=/path/to/chromium); the docs test renders pages with it"
            )
        command = [sudo, "-n", *INSTALL]
    print("docs test: Chromium is missing, installing it:", " ".join(command), file=sys.stderr)
    install = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    found = find_browser()
    if install.returncode or not found:
        pytest.fail(f"installing Chromium with apt-get failed:\n{install.stderr[-3000:]}")
    return found


def render(browser: str, page: Path, screenshot: Path, profile: Path) -> str:
    """The DOM of ``page`` after Chromium ran its scripts; writes a 1280x1600 screenshot."""
    result = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--window-size=1280,1600",
            f"--screenshot={screenshot}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{browser} failed on {page}:\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.mark.parametrize("name", BROWSER_PAGES)
def test_pages_render_their_code_in_chromium(
    site: Path, browser: str, shots: Path, tmp_path: Path, name: str
) -> None:
    source = DOCS / name
    page = site_page(site, source)
    screenshot = shots / (Path(name).with_suffix(".png").as_posix().replace("/", "-"))
    dom = read_page(page, render(browser, page, screenshot, tmp_path / "profile"))
    print(f"screenshot of {name}: {screenshot}")

    fences = len(FENCE.findall(source.read_text(encoding="utf-8"))) // 2
    assert fences, f"{name} has no code block to look for"
    assert len(dom.blocks) >= fences, (
        f"{name}: {len(dom.blocks)} code blocks in the rendered DOM for {fences} in the source"
    )
    filled = [block for block in dom.blocks if not MARKER.search(block)]
    assert len(filled) >= fences, f"{name}: code blocks show snippet markers, not code"
    assert not MARKER.search(dom.all_code), f"{name}: a snippet marker is in the rendered DOM"
    included = [ref for path, ref in snippet_references() if path == source]
    for reference in included:
        first = snippet_lines(reference)[0]
        assert first in dom.all_code, f"{name}: the first line of {reference} is not rendered"
    built = read_page(page)
    assert dom.formulas == built.formulas, f"{name}: {dom.formulas} of {built.formulas} formulas"
    assert not TEX.search(dom.prose), f"{name}: TeX left as text in the rendered DOM"

    with PIL.Image.open(screenshot) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape == (1600, 1280, 3), f"{screenshot}: {pixels.shape}"
    colours = np.unique(pixels.reshape(-1, 3), axis=0).shape[0]
    assert colours > 50, f"{screenshot} is nearly blank ({colours} colours)"
