"""Sphinx configuration of psyrun's documentation.

``nox -s docs`` builds it twice with ``-W``: once with the ``doctest`` builder
(every ``>>>`` example in these pages and in the docstrings autodoc pulls in
runs against the installed package) and once as HTML.  Everything here works
offline: no intersphinx.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

DOCS = Path(__file__).parent
ROOT = DOCS.parent

project = "psyrun"
author = "psyrun developers"
copyright = "psyrun developers"

try:
    from importlib import metadata

    release = metadata.version("psyrun")
except Exception:  # building from a tree where psyrun is not installed
    release = "unknown"
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.napoleon",
]

html_theme = "alabaster"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
nitpicky = False

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True}

# Names every doctest in the docs may use without importing them again.
doctest_global_setup = """
from pprint import pprint
"""

# --------------------------------------------------------------------------
# API pages of modules that are not written yet are left out instead of
# failing the build: each page under api/ names the modules it needs in
# comments ``.. module-required: psyrun.x``.  A page whose modules exist but
# fails to import still fails the build, as it should.
_REQUIRED = re.compile(r"^\.\. module-required: (\S+)", re.MULTILINE)


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:  # a parent package is missing
        return False


for page in sorted((DOCS / "api").glob("*.rst")):
    required = _REQUIRED.findall(page.read_text(encoding="utf-8"))
    if any(not _module_exists(module) for module in required):
        exclude_patterns.append(f"api/{page.name}")


# --------------------------------------------------------------------------
# The changelog is kept in Markdown at the top of the repository (CHANGELOG.md)
# and shown in the docs through this small converter: it knows what the file
# uses (ATX headings, paragraphs, "-" lists, `code`, [text](url) links).
_HEADING_CHARS = {1: "=", 2: "-", 3: "~", 4: "^"}


def markdown_to_rst(text: str) -> str:
    """Convert the Markdown subset of CHANGELOG.md to reStructuredText."""
    lines = []
    in_fence = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
            lines.extend(["", ".. code-block:: text", ""] if in_fence else [""])
            continue
        if in_fence:
            lines.append("   " + line)
            continue
        heading = re.match(r"^(#{1,4})\s+(.*)$", line)
        if heading:
            title = _inline(heading.group(2).strip())
            lines.extend([title, _HEADING_CHARS[len(heading.group(1))] * len(title)])
            continue
        lines.append(_inline(line))
    return "\n".join(lines) + "\n"


def _inline(line: str) -> str:
    # `code` -> ``code``, [text](url) -> `text <url>`__, and a bare trailing
    # underscore must not become a reference.
    parts = re.split(r"(`[^`]+`)", line)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            # rst needs a boundary around inline literals: "`x`s" -> "``x``\ s"
            before = "\\ " if out and re.search(r"\w$", out[-1]) else ""
            out.append(f"{before}``{part[1:-1]}``")
        else:
            pieces = re.split(r"(\[[^\]]+\]\([^)]+\))", part)
            part = "".join(
                re.sub(r"^\[([^\]]+)\]\(([^)]+)\)$", r"`\1 <\2>`__", piece) if i % 2
                else re.sub(r"(\w)_(?=\W|$)", r"\1\\_", piece)
                for i, piece in enumerate(pieces)
            )
            if out and out[-1].endswith("``") and re.match(r"\w", part):
                part = "\\ " + part
            out.append(part)
    return "".join(out)


# The index's toctrees glob guide/*, cli/*, plugins/* and api/*, so a page is
# added by adding a file.  A folder with no page yet would make Sphinx warn
# (and its "toc.empty_glob" cannot be suppressed in Sphinx 9), so the glob
# line of an empty folder is dropped before the index is parsed.
_GLOB_LINE = re.compile(r"^[ \t]+([\w-]+)/\*[ \t]*$", re.MULTILINE)


def _drop_empty_globs(text: str) -> str:
    def keep(match: re.Match[str]) -> str:
        folder = DOCS / match.group(1)
        return match.group(0) if any(folder.glob("*.rst")) else ""

    return _GLOB_LINE.sub(keep, text)


def _rewrite_source(app, docname: str, source: list[str]) -> None:
    if docname == "index":
        source[0] = _drop_empty_globs(source[0])
    elif docname == "changelog":
        changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
        source[0] = markdown_to_rst(changelog)


def _always_reread(app, env, added, changed, removed) -> list[str]:
    # Both pages depend on files Sphinx does not track (the folders' contents,
    # CHANGELOG.md), so an incremental build must read them again.
    return ["index", "changelog"]


def setup(app):
    app.connect("source-read", _rewrite_source)
    app.connect("env-get-outdated", _always_reread)
    return {"parallel_read_safe": True}
