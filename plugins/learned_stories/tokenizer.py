"""Character tokenizer with control tokens for story-lm (no torch here).

Ids: 0 PAD, 1 BOS, 2 EOS, then one control token per quest kind (``<q:fetch>``…), per tone (``<t:grim>``…)
and per line kind (``<k:ask>``…), then the characters seen in training. A training example is
``BOS <q> <t> <k> c1 c2 … EOS``; generation prompts with the first four and samples to EOS.
"""
from __future__ import annotations

import json

QUESTS = ("any", "fetch", "slay", "rescue", "deliver", "explore")
TONES = ("any", "earnest", "grim", "playful")
KINDS = ("line", "title", "greet", "ask", "accept", "haggle", "decline", "lore_q", "lore_a", "offer", "thanks",
         "bye", "place", "item", "beat_talk", "beat_goto", "beat_fetch", "beat_defeat", "beat_escort",
         "beat_deliver", "beat_explore", "beat_return")
PAD, BOS, EOS = 0, 1, 2
SPECIALS = ["<pad>", "<bos>", "<eos>"] + [f"<q:{q}>" for q in QUESTS] + [f"<t:{t}>" for t in TONES] + \
    [f"<k:{k}>" for k in KINDS]


class Tokenizer:
    def __init__(self, chars: str):
        self.chars = "".join(sorted(set(chars)))
        self.offset = len(SPECIALS)
        self.index = {c: i + self.offset for i, c in enumerate(self.chars)}
        self.vocab: frozenset | None = None  # words of the training lines (rejects made-up words)

    @property
    def vocab_size(self) -> int:
        return self.offset + len(self.chars)

    @staticmethod
    def control(quest: str, tone: str, kind: str) -> list[int]:
        q = 3 + QUESTS.index(quest if quest in QUESTS else "any")
        t = 3 + len(QUESTS) + TONES.index(tone if tone in TONES else "any")
        k = 3 + len(QUESTS) + len(TONES) + KINDS.index(kind if kind in KINDS else "line")
        return [BOS, q, t, k]

    def encode(self, text: str) -> list[int]:
        return [self.index[c] for c in text if c in self.index]

    def decode(self, ids) -> str:
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i >= self.offset:
                out.append(self.chars[i - self.offset])
        return "".join(out)

    def to_json(self) -> str:
        return json.dumps(self.chars, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "Tokenizer":
        return cls(json.loads(text))


def parse_line(line: str) -> tuple[str, str, str, str] | None:
    """``QUEST|TONE|KIND|text`` → fields; a plain line (a user's own text) → ``any|any|line``."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    parts = line.split("|", 3)
    if len(parts) == 4 and parts[0] in QUESTS and parts[1] in TONES and parts[2] in KINDS:
        return parts[0], parts[1], parts[2], parts[3].strip()
    return "any", "any", "line", line
