"""A configurable text content filter for generated names and lines.

The default word list (``engine/data/blocklist.txt``) holds slurs and profanity; ``CONJURE_FILTER_FILE``
adds a file in the same format. Names are checked by substring (a generated name must not *contain* a listed
word), lines by whole words and patterns. Generators resample what the filter rejects and report how many.
"""
from __future__ import annotations

import os
import re
from functools import lru_cache
from importlib import resources
from typing import Iterable


class ContentFilter:
    def __init__(self, words: Iterable[str] = (), patterns: Iterable[str] = ()):
        self.words = tuple(sorted({w.strip().lower() for w in words if w.strip()}))
        self.patterns = tuple(re.compile(p, re.IGNORECASE) for p in patterns)
        body = "|".join(re.escape(w) for w in self.words) or r"(?!x)x"
        self._word_re = re.compile(rf"\b(?:{body})(?:s|es|ed|er|ers|ing|y)?\b", re.IGNORECASE)

    @classmethod
    def parse(cls, text: str) -> "ContentFilter":
        words, pats = [], []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            (pats if line.startswith("re:") else words).append(line[3:] if line.startswith("re:") else line)
        return cls(words, pats)

    def merged(self, other: "ContentFilter") -> "ContentFilter":
        f = ContentFilter(self.words + other.words)
        f.patterns = self.patterns + other.patterns
        return f

    def name_ok(self, name: str) -> bool:
        low = re.sub(r"[^a-z]", "", name.lower())
        return not any(w in low for w in self.words) and self.text_ok(name)

    def text_ok(self, text: str) -> bool:
        if self._word_re.search(text):
            return False
        return not any(p.search(text) for p in self.patterns)


@lru_cache(maxsize=1)
def default_filter() -> ContentFilter:
    text = resources.files("engine").joinpath("data/blocklist.txt").read_text("utf-8")
    f = ContentFilter.parse(text)
    extra = os.environ.get("CONJURE_FILTER_FILE")
    if extra:
        with open(extra, encoding="utf-8") as fh:
            f = f.merged(ContentFilter.parse(fh.read(1 << 20)))
    return f
