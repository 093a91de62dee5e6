"""The seed user guide is our API contract: its examples must pass unchanged.

``seed_guide.rst`` next to this file is a verbatim copy of the user guide this
project started from (our own seed specification, ``shared/spec/guide.rst``),
kept here so that the test runs from a clone of the repository alone.  It is
not part of the Sphinx docs, which are written afresh.  Only the sections
"Constructing parameter spaces" and "Evaluating functions on parameter spaces"
hold examples; they run here as doctests, in order and sharing one namespace
as a reader typing them would, against the installed ``psyrun``.
"""

from __future__ import annotations

import doctest
import io
import re
from pathlib import Path

import pytest

GUIDE = Path(__file__).with_name("seed_guide.rst")
SECTIONS = ("Constructing parameter spaces", "Evaluating functions on parameter spaces")


def sections(text: str) -> dict[str, str]:
    """Split an rst document into its sections, keyed by title."""
    # A title is a line followed by an underline of -, = or ~ at least as long.
    pattern = re.compile(r"^(?P<title>\S.*)\n(?P<rule>[-=~^]{3,})[ \t]*$", re.MULTILINE)
    matches = [m for m in pattern.finditer(text) if len(m.group("rule")) >= len(m.group("title"))]
    result = {}
    for match, following in zip(matches, matches[1:] + [None]):
        end = following.start() if following is not None else len(text)
        result[match.group("title").strip()] = text[match.end():end]
    return result


def test_the_copy_is_the_seed_guide_unchanged():
    shared = Path(__file__).resolve().parents[3] / "shared" / "spec" / "guide.rst"
    if not shared.exists():
        pytest.skip(f"the shared seed guide is not next to this clone ({shared})")
    assert GUIDE.read_text(encoding="utf-8") == shared.read_text(encoding="utf-8")


def test_only_the_two_sections_have_examples():
    # If the guide grew examples elsewhere, this test would have to run them too.
    by_title = sections(GUIDE.read_text(encoding="utf-8"))
    assert set(SECTIONS) <= set(by_title)
    with_examples = {title for title, body in by_title.items() if ">>>" in body}
    assert with_examples == set(SECTIONS)


def test_seed_guide_examples_pass_unchanged():
    by_title = sections(GUIDE.read_text(encoding="utf-8"))
    text = "\n".join(by_title[title] for title in SECTIONS)
    test = doctest.DocTestParser().get_doctest(text, {}, "seed_guide", str(GUIDE), 0)
    assert len(test.examples) >= 15, "the sections lost their examples"
    out = io.StringIO()
    runner = doctest.DocTestRunner()  # no option flags: the examples as written
    result = runner.run(test, out=out.write)
    assert result.failed == 0, out.getvalue()
    assert result.attempted == len(test.examples)
