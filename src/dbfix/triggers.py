"""Searching a rule's trigger in a file's text: `re` alone scans the text slower than it needs to.

A cold check searches the triggers in every file of the project (0.3 s of CPU on polar's 14 MB), so two
shortcuts are taken. Neither changes an answer:

- **Words.** When every alternative of a trigger starts with a word (`ForeignKey|foreign_key`,
  `Enum|Mapped|table\\s*=\\s*True`), every match of an alternative holds its word, and `in` finds a
  word several times faster than the regex engine scans for a set of alternatives. An alternative's
  regex runs only on a text that holds its word, and not at all when the word is the whole alternative.
- **Long lines.** A trigger that starts with the comment `(?#line>=N)` claims that a match never spans
  lines and needs a line of at least N characters: only such lines are searched. DBF007's run of 64
  name characters is tried at every character of the text; most lines are shorter than 64.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from typing import Any

_LINE_HINT = re.compile(r"\(\?#line>=(\d+)\)")
_WORD = re.compile(r"\w+")
_QUANTIFIERS = "?*{"  # after a word's last character: that character may be absent


@functools.cache
def searcher(pattern: str, binary: bool) -> Callable[[Any], bool]:
    """Whether `pattern` matches somewhere in a text (bytes if `binary`), as `re.search` says."""
    regex = re.compile(pattern.encode() if binary else pattern)
    inner = _unwrap(pattern)
    hint = _LINE_HINT.match(inner)
    if hint is not None:
        shortest, newline = int(hint.group(1)), b"\n" if binary else "\n"
        search = regex.search
        return lambda text: any(len(line) >= shortest and search(line) for line in text.split(newline))
    found = _leading_words(inner)
    if found is None:
        return lambda text: regex.search(text) is not None
    # each alternative apart: a word that is all of one is a match, the others need their regex too
    tests = [
        (word.encode() if binary else word, None if word == alternative else re.compile(alternative.encode() if binary else alternative).search)
        for word, alternative in found
    ]
    return lambda text: any(word in text and (search is None or search(text) is not None) for word, search in tests)


def _unwrap(pattern: str) -> str:
    """`pattern` without the non-capturing groups that enclose all of it."""
    while pattern.startswith("(?:") and next((i for i, c, d in _structure(pattern) if c == ")" and d == 0), -1) == len(pattern) - 1:
        pattern = pattern[3:-1]
    return pattern


def _structure(pattern: str) -> Iterator[tuple[int, str, int]]:
    """(index, character, group depth after it) of each `(`, `)` and `|` outside escapes and classes."""
    depth, i, size = 0, 0, len(pattern)
    while i < size:
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":  # a class: to its `]`, which may not be its first member
            i += 2 if pattern.startswith("^", i + 1) else 1
            i += 1 if pattern.startswith("]", i) else 0
            while i < size and pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
            i += 1
            continue
        if char in "()|":
            depth += {"(": 1, ")": -1, "|": 0}[char]
            yield i, char, depth
        i += 1


def _leading_words(pattern: str) -> list[tuple[str, str]] | None:
    """(the word it starts with, the alternative) for each top-level alternative of `pattern` (a word:
    at least 3 characters every match of it begins with), or None when one does not start with such a
    word, or flags may change case."""
    if "(?" in pattern.replace("(?:", "") or re.search(r"\\[1-9]", pattern):
        return None  # inline flags, look-arounds, named groups, back-references: not worth reading
    bars = [i for i, c, d in _structure(pattern) if c == "|" and d == 0]
    alternatives = [pattern[a + 1 : b] for a, b in zip([-1, *bars], [*bars, len(pattern)])]
    words = []
    for alternative in alternatives:
        word = _WORD.match(alternative)
        if word is None:
            return None
        text = word.group()
        if alternative[word.end() : word.end() + 1] in tuple(_QUANTIFIERS):
            text = text[:-1]
        if len(text) < 3:
            return None
        words.append((text, alternative))
    return words
