"""Keep pytest out of the raw plugin template: its files hold ``{{ placeholders }}``.

The template is tested by rendering it (``tests/test_plugin_kit.py``), not in place.
"""

from __future__ import annotations

collect_ignore_glob = ["template/*"]
