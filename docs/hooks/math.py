"""MkDocs hook: typeset the pages' TeX as MathML at build time, so math needs no script or network.

``pymdownx.arithmatex`` (``generic: true``) leaves ``\\(...\\)`` in ``<span class="arithmatex">``
and ``\\[...\\]`` in ``<div class="arithmatex">`` for a browser-side renderer; without one, readers
see the TeX source. This hook replaces the TeX in each with the MathML that ``latex2mathml`` writes (browsers
render MathML natively), keeping the TeX as the ``alttext`` of the ``<math>`` element. A formula
that does not convert stays as TeX and is logged; ``mkdocs build --strict`` then fails.

Enabled in ``mkdocs.yml``::

    hooks:
      - docs/hooks/math.py

References: MathML Core, https://www.w3.org/TR/mathml-core/
"""

from __future__ import annotations

import html
import logging
import re
from typing import Any

from latex2mathml.converter import convert

log = logging.getLogger("mkdocs.hooks.math")

ARITHMATEX = re.compile(
    r'<(?P<tag>span|div) class="arithmatex">\s*(?P<open>\\\(|\\\[)(?P<tex>.*?)(?:\\\)|\\\])\s*</(?P=tag)>',
    re.S,
)


def _typeset(match: re.Match[str], where: str) -> str:
    tex = html.unescape(match.group("tex")).strip()
    display = "block" if match.group("open") == "\\[" else "inline"
    try:
        mathml = convert(tex, display=display)
    except Exception as exc:  # latex2mathml raises many kinds for unsupported TeX
        log.warning("%s: cannot typeset %r: %s: %s", where, tex[:80], type(exc).__name__, exc)
        return match.group(0)
    mathml = mathml.replace("<math ", f'<math alttext="{html.escape(tex, quote=True)}" ', 1)
    tag = match.group("tag")  # the wrapper stays: the theme styles it (display math scrolls)
    return f'<{tag} class="arithmatex">{mathml}</{tag}>'


def on_page_content(html_text: str, page: Any, **_: Any) -> str:
    """Replace every arithmatex formula of the page with MathML."""
    where = page.file.src_uri
    return ARITHMATEX.sub(lambda match: _typeset(match, where), html_text)
