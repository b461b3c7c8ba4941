"""A configurable text content filter for generated names and lines.

The default word list (``engine/data/blocklist.txt``) holds slurs and profanity; ``CONJURE_FILTER_FILE``
adds a file in the same format (a missing or unreadable one is an input error, exit 2). Text is normalised
before matching: NFKC, case folding, accents stripped, invisible format characters dropped, and look-alike
letters from other scripts (Greek ``ο``, Cyrillic ``с``, fullwidth and mathematical letters…) folded to
the Latin letters they imitate, digits inside words read as letters (``sh1t``). Names are checked by
substring (a generated name must not *contain* a listed word); lines word by word, where a word is caught
when it is a listed word plus an ending (``-s``, ``-ing``, ``-ian``…: word stems, not arbitrary prefixes,
so "assassin" and "hello" stay fine). Generators resample what the filter rejects; the engine checks every
text field of every character and story whatever produced it (:func:`content_problems`) and the names in a
context cast (:func:`context_problems`).
"""
from __future__ import annotations

import os
import re
import unicodedata
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable

#: Letters of other scripts that look like Latin ones (the prototypes Unicode's confusables.txt gives for
#: the Greek and Cyrillic letters used in look-alike spelling), applied after NFKC and case folding.
CONFUSABLES = str.maketrans({
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "γ": "y", "ω": "w", "ς": "c", "σ": "o", "μ": "u", "ϲ": "c", "ϳ": "j",
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "һ": "h", "ԁ": "d", "ԛ": "q",
    "ԝ": "w", "ь": "b", "г": "r", "п": "n", "ո": "n", "ս": "u",
    # Latin look-alikes NFKC keeps
    "ı": "i", "ɑ": "a", "ɡ": "g", "ʀ": "r", "ɪ": "i", "ʏ": "y", "ᴄ": "c", "ᴏ": "o", "ᴜ": "u", "ᴠ": "v",
    "ᴡ": "w", "ᴢ": "z", "ß": "ss", "ø": "o", "đ": "d", "ł": "l", "ħ": "h",
})
#: Digits and signs read as letters inside a word that has letters too (``sh1t``, ``@ss``).
LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
#: Endings a listed word may carry and still be caught in a line (word stems).
SUFFIXES = ("", "s", "es", "ed", "d", "er", "ers", "ing", "ings", "y", "ie", "ies", "ian", "ians", "ish",
            "ist", "ists", "ism", "isms", "ness", "ly", "head", "heads", "hole", "holes", "face", "faces",
            "bag", "bags", "wit", "wits", "off", "offs", "fest", "tard", "tards")
#: Endings before which English doubles a final consonant.
DOUBLING = ("ing", "ings", "ed", "er", "ers", "y", "ie", "ies")
_TOKEN = re.compile(r"[a-z0-9@$]+")
MAX_FILTER_FILE = 1 << 20


def fold(text: str) -> str:
    """``text`` as the filter sees it: NFKC, case-folded, accents and invisible characters dropped,
    look-alike letters of other scripts folded to Latin."""
    if isinstance(text, str) and text.isascii():  # all of that is lower() on ASCII (no ASCII character changes)
        return text.lower()
    t = unicodedata.normalize("NFKC", str(text)).casefold()
    t = "".join(ch for ch in unicodedata.normalize("NFKD", t)
                if not unicodedata.combining(ch) and unicodedata.category(ch) != "Cf")
    return t.translate(CONFUSABLES)


def _words(text: str) -> list[str]:
    """The words of ``text`` after :func:`fold`; a word mixing letters and digits or signs appears twice:
    read as leetspeak (``sh1t`` -> ``shit``) and with the non-letters dropped."""
    out = []
    for tok in _TOKEN.findall(fold(text)):
        letters = tok if tok.isalpha() else re.sub(r"[^a-z]", "", tok)  # tokens are ASCII: isalpha() is a-z
        if not letters:
            continue
        out.append(letters)
        if letters != tok:
            out.append(tok.translate(LEET))
    return out


class ContentFilter:
    def __init__(self, words: Iterable[str] = (), patterns: Iterable[str] = ()):
        self.words = tuple(sorted({fold(w.strip()) for w in words if w.strip()}))
        self.patterns = tuple(re.compile(p, re.IGNORECASE) for p in patterns)
        self._stems = {w + s for w in self.words for s in SUFFIXES}
        self._stems |= {w + w[-1] + s for w in self.words for s in DOUBLING if w}  # "grobbing"

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
        words = _words(name)
        run = "".join(w if w.isalpha() else re.sub(r"[^a-z]", "", w) for w in words)  # "Fu Ck", "f.u.c.k": one
        return not any(w in x for x in [run, *words] for w in self.words) and self.text_ok(name)

    def text_ok(self, text: str) -> bool:
        if any(w in self._stems for w in _words(text)):
            return False
        folded = fold(text)
        return not any(p.search(text) or p.search(folded) for p in self.patterns)


def _strings(value: Any, where: str, skip: frozenset = frozenset({"schema", "metadata", "sprite"})):
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for k, v in value.items():
            if k not in skip:
                yield from _strings(v, f"{where}.{k}", skip)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _strings(v, f"{where}[{i}]", skip)


def content_problems(content: Any, filt: "ContentFilter | None" = None) -> list[str]:
    """Every text field of a character, cast or story the filter rejects, as problems naming the field
    (``name`` fields by substring, the rest word by word). Other content has no free text: no problems."""
    kind = getattr(content, "KIND", None)
    if kind not in ("character", "story"):
        return []
    filt = filt or default_filter()
    out = []
    for where, text in _strings(content.to_dict(binary=True), type(content).__name__.lower()):  # grids as bytes: not text
        ok = filt.name_ok(text) if where.endswith(".name") else filt.text_ok(text)
        if not ok:
            out.append(f"{where}: blocked by the content filter")
    return out


def context_problems(context: dict, filt: "ContentFilter | None" = None) -> list[str]:
    """Names and lines in a generation context (a cast or story loaded from files) the filter rejects."""
    out = []
    for key in ("cast", "story"):
        if context.get(key) is not None:
            out += [f"context {p}" for p in content_problems(context[key], filt)]
    return out


@lru_cache(maxsize=1)
def default_filter() -> ContentFilter:
    text = resources.files("engine").joinpath("data/blocklist.txt").read_text("utf-8")
    f = ContentFilter.parse(text)
    extra = os.environ.get("CONJURE_FILTER_FILE")
    if extra:
        from .errors import InputError
        from .serialize import read_bytes

        try:
            data = read_bytes(extra, MAX_FILTER_FILE).decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"CONJURE_FILTER_FILE={extra}: not UTF-8 text") from None
        except InputError as e:
            raise InputError(f"CONJURE_FILTER_FILE: {e}") from None
        f = f.merged(ContentFilter.parse(data))
    return f
