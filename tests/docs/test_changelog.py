"""CHANGELOG.md reaches the docs through docs/conf.py's Markdown converter.

``nox -s docs`` would fail on a changelog entry the converter turns into bad
reStructuredText; these tests catch it in ``nox -s tests`` already and pin
down the few Markdown constructs the converter handles.
"""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import docutils.core
import docutils.utils
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def markdown_to_rst():
    spec = importlib.util.spec_from_file_location("psyrun_docs_conf", ROOT / "docs" / "conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    return conf.markdown_to_rst


def rst_problems(text: str) -> str:
    """docutils' warnings and errors for ``text`` (empty when it is clean)."""
    stream = io.StringIO()
    docutils.core.publish_doctree(
        text, settings_overrides={"warning_stream": stream, "report_level": 2, "halt_level": 5})
    return stream.getvalue()


def test_the_changelog_converts_to_clean_rst(markdown_to_rst):
    rst = markdown_to_rst((ROOT / "CHANGELOG.md").read_text(encoding="utf-8"))
    assert rst.startswith("Changelog\n=========\n")
    assert rst_problems(rst) == ""


def test_headings_code_links_and_underscores(markdown_to_rst):
    markdown = (
        "# Title\n\n## 1.0 (`x`)\n\n### Fixes\n\n"
        "- `missing(a, b)`s compare rows; see [the guide](https://example.org/g).\n"
        "- task_<name>.py and map_ are plain text\n\n"
        "```\ncode block\n```\n"
    )
    rst = markdown_to_rst(markdown)
    assert "Title\n=====\n" in rst
    assert "1.0 (``x``)\n-----------\n" in rst
    assert "Fixes\n~~~~~\n" in rst
    assert "``missing(a, b)``\\ s compare rows" in rst
    assert "`the guide <https://example.org/g>`__" in rst
    assert "task\\_<name>.py and map\\_ are plain text" in rst
    assert ".. code-block:: text\n\n   code block\n" in rst
    assert rst_problems(rst) == ""
