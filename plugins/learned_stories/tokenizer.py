"""story-lm's tokenizer: a byte-level BPE vocabulary learned from the training lines, plus control and slot
tokens (no torch here).

Built on Hugging Face ``tokenizers`` (Rust, deterministic training, exact byte-level round trip): a
corpus of ~12,000 short lines has ~1,500 distinct words, so a vocabulary of a couple of thousand pieces
holds nearly every word as one token. Lines are 3–4× shorter in tokens than in characters, so decoding is
that much faster, and the model writes whole words instead of spelling them (no invented words from
letters gone astray). Byte-level pieces mean any UTF-8 text a user trains on can be encoded.

Ids: 0 PAD, 1 BOS, 2 EOS, then one control token per quest kind (``<q:fetch>``…), per tone (``<t:grim>``…)
and per line kind (``<k:ask>``…), then one **slot** token per placeholder (``{place}``…): a slot is a
single token the model emits whole, so the planner's names are inserted verbatim and never spelled (or
misspelled) by the model. Then the learned pieces. A training example is
``BOS <q> <t> <k> pieces… EOS``; generation prompts with the first four and samples to EOS.
"""
from __future__ import annotations

import hashlib
import re

QUESTS = ("any", "fetch", "slay", "rescue", "deliver", "explore")
TONES = ("any", "earnest", "grim", "playful")
KINDS = ("line", "title", "greet", "ask", "promise", "accept", "haggle", "decline", "lore_q", "lore_a", "offer",
         "thanks", "bye", "place", "item", "beat_talk", "beat_goto", "beat_fetch", "beat_defeat", "beat_escort",
         "beat_deliver", "beat_explore", "beat_return")
SLOTS = ("place", "place2", "giver", "item", "foe", "other", "reward")
PAD, BOS, EOS = 0, 1, 2
SPECIALS = ["<pad>", "<bos>", "<eos>"] + [f"<q:{q}>" for q in QUESTS] + [f"<t:{t}>" for t in TONES] + \
    [f"<k:{k}>" for k in KINDS]
SLOT_TOKENS = [f"{{{s}}}" for s in SLOTS]
FIRST_TEXT_ID = len(SPECIALS)  # slots and pieces from here on
DEFAULT_VOCAB = 1280
HEADER = re.compile(r"^([a-z_0-9]+)\|([a-z_0-9]+)\|([a-z_0-9]+)\|(.*)$")


class Tokenizer:
    """A trained ``tokenizers.Tokenizer`` with the story-lm control tokens."""

    def __init__(self, tk):
        self.tk = tk
        self.vocab: frozenset | None = None  # words of the training lines (rejects made-up words)
        self.kinds: frozenset | None = None  # line kinds the weights were trained on (None: all)
        self.slots: frozenset | None = None  # placeholders the weights were trained on (None: all)
        self.cells: frozenset = frozenset()  # "quest|tone|kind" combinations the weights were trained on

    @classmethod
    def train(cls, texts, vocab_size: int = DEFAULT_VOCAB) -> "Tokenizer":
        from tokenizers import Tokenizer as HFTokenizer, decoders, models, pre_tokenizers, trainers

        tk = HFTokenizer(models.BPE())
        tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tk.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                      special_tokens=SPECIALS + SLOT_TOKENS,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tk.train_from_iterator(list(texts), trainer)
        return cls(tk)

    @property
    def vocab_size(self) -> int:
        return self.tk.get_vocab_size()

    @staticmethod
    def control(quest: str, tone: str, kind: str) -> list[int]:
        q = 3 + QUESTS.index(quest if quest in QUESTS else "any")
        t = 3 + len(QUESTS) + TONES.index(tone if tone in TONES else "any")
        k = 3 + len(QUESTS) + len(TONES) + KINDS.index(kind if kind in KINDS else "line")
        return [BOS, q, t, k]

    def prompt(self, quest: str, tone: str, kind: str) -> list[int]:
        """The control tokens for a line: the most specific (quest, tone, kind) the weights were trained on;
        a kind they never saw is asked for as a plain ``line`` (a model trained on a user's plain text)."""
        cells = self.cells
        if not cells:
            return self.control(quest, tone, kind)
        for k in (kind, "line"):
            for q, t in ((quest, tone), ("any", tone), (quest, "any"), ("any", "any")):
                if f"{q}|{t}|{k}" in cells:
                    return self.control(q, t, k)
        return self.control("any", "any", kind)

    def encode(self, text: str) -> list[int]:
        return self.tk.encode(text, add_special_tokens=False).ids

    def decode(self, ids) -> str:
        """Text of ``ids`` up to EOS; slot tokens come out as ``{place}``…, control tokens are dropped."""
        keep = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i >= FIRST_TEXT_ID:
                keep.append(i)
        return self.tk.decode(keep, skip_special_tokens=False)

    def to_json(self) -> str:
        return self.tk.to_str()

    @classmethod
    def from_json(cls, text: str) -> "Tokenizer":
        from tokenizers import Tokenizer as HFTokenizer

        tk = HFTokenizer.from_str(text)
        for i, name in enumerate(SPECIALS + SLOT_TOKENS):  # the ids the model's control tokens rely on
            if tk.token_to_id(name) != i:
                raise ValueError(f"token {name!r} is not id {i}")
        return cls(tk)


def parse_line(line: str, where: str = "") -> tuple[str, str, str, str] | None:
    """``QUEST|TONE|KIND|text`` → fields; a plain line (a user's own text) → ``any|any|line``.

    A line whose first three ``|`` fields are lower-case words is a header line: an unknown quest kind, tone or
    line kind there is an error naming ``where`` (``file:line``), never silently plain text."""
    from engine.errors import InputError

    line = line.strip()
    if not line or line.startswith("#"):
        return None
    m = HEADER.match(line)
    if m is None:
        return "any", "any", "line", line
    q, t, k, text = m.groups()
    for value, known, what in ((q, QUESTS, "quest kind"), (t, TONES, "tone"), (k, KINDS, "line kind")):
        if value not in known:
            raise InputError(f"{where or 'line'}: unknown {what} {value!r} in the header "
                             f"(known: {', '.join(known)})")
    return q, t, k, text.strip()


COPY_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
COPY_WORDS = 8          # a sampled line that copies a training line longer than this is not a new line
_PLACEHOLDER = re.compile(r"\{[a-z0-9_]*\}")


def copy_key(text: str) -> str | None:
    """A line's copy key (its words, placeholders as ``slot``, hashed), or None for a line of at most
    :data:`COPY_WORDS` words; the weights store the keys of their training lines so decoding can refuse a
    verbatim copy of one (the same normalisation as ``engine.eval_stories``)."""
    words = COPY_WORD.findall(_PLACEHOLDER.sub(" slot ", text.lower()))
    if len(words) <= COPY_WORDS:
        return None
    return hashlib.blake2b(" ".join(words).encode("utf-8"), digest_size=8).hexdigest()
