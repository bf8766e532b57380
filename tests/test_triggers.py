"""The trigger shortcuts (`dbfix.triggers`) answer as `re.search` does."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from dbfix.codemod import all_codemods
from dbfix.engine import text_tests
from dbfix.triggers import _leading_words, _unwrap, searcher

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("ForeignKey|foreign_key", ["ForeignKey", "foreign_key"]),
        (r"Enum|ENUM|Mapped|table\s*=\s*True", ["Enum", "ENUM", "Mapped", "table"]),
        (r"Index|index\s*=", ["Index", "index"]),
        ("abcd?|xyz", ["abc", "xyz"]),  # `d` may be absent
        ("abc?|xyz", None),  # leaves a word of 2
        ("[rR]elationship", None),
        ("(?:a|b)cde|xyz", None),
        ("(?i)enum", None),
        (r"abc(d)|xyz\1", None),  # a back-reference: the alternatives cannot be searched apart
        (r"x\||yyyy", None),
        ("a[|]bcd|yyyy", None),
        ("abcd[)|]|yyyy", ["abcd", "yyyy"]),  # a `|` and a `)` inside a class split nothing
    ],
)
def test_leading_words(pattern: str, words: list[str] | None):
    found = _leading_words(pattern)
    assert (found and [w for w, _ in found]) == words


def test_unwrap_only_a_group_around_everything():
    assert _unwrap("(?:(?:a|b))") == "a|b"
    assert _unwrap("(?:a)|(?:b)") == "(?:a)|(?:b)"
    assert _unwrap(r"(?:[)]x)") == "[)]x"


def _texts() -> list[str]:
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(FIXTURES.rglob("*.py"))]
    rng = random.Random(7)
    pieces = ["ForeignKey", "foreign_key", "Enum", "table = True", "table=False", "Index(", "index =", "relationship",
              "x" * 70, "z" * 64, "y" * 63, "metadata", "model_dump", ".now()", ". \\\n now", "utcnow", "\n", " ", "(", '"']
    texts += ["".join(rng.choice(pieces) for _ in range(rng.randrange(1, 30))) for _ in range(2000)]
    return texts


def test_every_trigger_answers_as_re_does():
    """Each selected rule's trigger, alone and as the index groups them, on the fixtures and random text."""
    tests = text_tests(all_codemods())
    patterns = {c.triggers for c in all_codemods() if c.triggers} | {*tests.whole, *tests.anywhere, *tests.declaring}
    assert any(_leading_words(_unwrap(p)) for p in patterns) and any("(?#line>=" in p for p in patterns)
    for text in _texts():
        for pattern in patterns:
            expected = re.search(pattern, text) is not None
            assert searcher(pattern, False)(text) is expected, (pattern, text[:80])
            assert searcher(pattern, True)(text.encode()) is expected, (pattern, text[:80])
