"""``story-lm``: quests planned by the story planner, worded by a small BPE transformer.

The planner (:mod:`plugins.story_plan`) grounds the quest in the context (the level's regions, the cast's
characters; hostile ones as foes) and lays out beats and a dialogue graph; the language model writes every
line (title, greeting, the ask, the promise of a reward, the player's choices, lore, the offer, thanks,
farewell, beat texts, place and item descriptions) conditioned on control tokens (quest kind, tone, line
kind). Names are **slots**: the model emits ``{place}``, ``{giver}``, ``{item}``, ``{foe}``, ``{other}``,
``{place2}``, ``{reward}`` as single tokens and the planner inserts the grounded names verbatim, so every
id a story mentions comes from its context and no name is ever spelled by the model.

**Faithful by construction, checked line by line.** The start node states every fact the quest needs before
the player can accept: the greeting names the giver, the ask names what and where, the promise names the
reward; each of those lines is rejected unless it carries its slots (:data:`REQUIRED`), and a line may
only use the slots its quest has (a fetch quest has no ``{foe}``; in a deliver quest ``{place}`` is where
the item goes). A line that names a place, character, item or sum of gold of the context that is not this
story's (a contradiction of the plan) is rejected too.

Every sampled line is judged by :func:`check_line` against the **weights in use** (their own word list,
kinds and slots) and against the lines already written for the story: length, placeholders, made-up words,
stutters, a repeated line, sentence or five-word phrase, pronoun/verb agreement and articles ("they is", "a amulet"),
dangling objects ("Go them out"), lines that stop mid-phrase, the content filter (:mod:`engine.textfilter`),
and, with ``new_lines=true``, a word-for-word copy of a training line of more than 8 words (the weights
store their training lines' hashed keys; off by default: it costs first-sample acceptance, see
docs/stories.md).
A rejected line is resampled, each round a little hotter (up to ``RESAMPLE_ROUNDS``) and ``metadata["rejections"]`` says why, line by
line; after the last round a line falls back to an authored one (``metadata["fallback_lines"]``).

All lines of all stories in a ``generate_batch`` call are sampled in one batched KV-cache pass (then one
pass per resampling round). Each line has its own ``torch.Generator`` derived from the request, so a
story is the same alone or in a batch, and byte-identical across processes (fp32, one torch thread).
torch is imported on first use only.
"""
from __future__ import annotations

import json
import re
import threading
import unicodedata
from pathlib import Path

from engine import Choice, DialogueNode, Generator, Param, Quest, Story, hookimpl
from engine.errors import InputError
from engine.resources import data_path
from engine.textfilter import default_filter

from .learned_stories.corpus import fallback_line
from .learned_stories.tokenizer import copy_key
from .story_plan import QUEST_KINDS, TONES, plan
from .words import ITEMS, ROOM_ADJ, ROOM_NOUN, pick

MODEL_DIR = data_path("plugins", "data", "models", "story-lm")
CORPUS = data_path("plugins", "data", "stories", "corpus.txt")
WEIGHTS = "story-lm.safetensors"
MAX_TOKENS = 48     # new tokens per line; a line without EOS by then is rejected
MAX_CHARS = 160
MIN_CHARS = 2
MIN_STEPS = 600     # training steps at least, when --epochs is not given
MIN_TINY_STEPS = 60
RESAMPLE_ROUNDS = 20
OTHER_TONES_FROM = 4  # from this round on a player's line may be asked in another tone (see _tone)
PLAYER_KINDS = {"accept", "decline", "haggle", "lore_q"}
HOTTER = 0.1        # each resampling round samples this much hotter (up to MAX_TEMPERATURE)
MAX_TEMPERATURE = 1.5
PHRASE = 5          # a five-word phrase said twice in one story's dialogue reads as a loop
PLACEHOLDER = re.compile(r"\{([a-z0-9_]*)\}")
GLUED = re.compile(r"[^\W_]\{[a-z0-9_]*\}|\{[a-z0-9_]*\}[^\W_]")
KNOWN = ("place", "place2", "giver", "item", "foe", "other", "reward")
REWARDS = tuple(f"{n} gold" for n in (40, 50, 60, 75, 80, 100, 120, 150, 200, 250, 300)) + (
    "a silver blade", "my family's old ring", "a favour owed", "120 gold and a horse", "a map of the old roads",
    "a bag of rubies", "a fine cloak", "a good horse", "my grandfather's bow", "a year of free meals")
#: what each quest kind lets its lines name (the roles the plan has)
ROLES = {"fetch": ("place", "giver", "item", "reward"), "slay": ("place", "giver", "foe", "reward"),
         "rescue": ("place", "giver", "other", "foe", "reward"), "deliver": ("place", "giver", "item", "other", "reward"),
         "explore": ("place", "place2", "giver", "reward")}
#: the slots a line must use: the facts the player needs before accepting, and what a beat is about
REQUIRED = {("greet", None): ("giver",), ("promise", None): ("reward",), ("offer", None): ("reward",),
            ("ask", "fetch"): ("place", "item"), ("ask", "slay"): ("place", "foe"),
            ("ask", "rescue"): ("place", "other"), ("ask", "deliver"): ("place", "item", "other"),
            ("ask", "explore"): ("place", "place2"), ("lore_q", None): ("place",), ("lore_a", None): ("place",),
            ("place", None): ("place",), ("item", None): ("item",)}
BEAT_REQUIRED = {"goto": ("place",), "explore": ("place",), "talk": ("giver",), "return": ("giver",),
                 "defeat": ("foe",), "escort": ("other",), "deliver": ("other", "item"), "fetch": ("item",)}

WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
#: words a line may not end on (the model sometimes stops mid-phrase)
DANGLING = {"a", "an", "the", "to", "of", "at", "by", "with", "and", "or", "but", "my", "your", "their", "our",
            "into", "from"}
#: closed-class words: one said twice back to back ("it it") is a glitch; "Fun, fun, fun!" or "Wink wink" is not
FUNCTION_WORDS = {"a", "an", "the", "to", "of", "at", "by", "with", "and", "or", "but", "in", "on", "for", "from",
                  "into", "i", "you", "he", "she", "it", "we", "they", "me", "him", "her", "us", "them", "my", "your",
                  "his", "its", "our", "their", "is", "are", "was", "were", "be", "am", "will", "shall", "can",
                  "not", "that", "this", "if", "so", "as", "than", "then"}
SENTENCE_START = re.compile(r"([.!?]\s+)([a-z])")
SMALL_WORDS = {"a", "an", "and", "at", "by", "for", "in", "of", "on", "or", "the", "to", "with"}
#: subject pronoun -> verb forms it never takes
AGREEMENT = {"i": {"is", "are", "has", "does"}, "you": {"is", "am", "has", "does", "was"},
             "he": {"are", "am", "have", "do"}, "she": {"are", "am", "have", "do"},
             "it": {"are", "am", "have", "do"}, "we": {"is", "am", "has", "does", "was"},
             "they": {"is", "am", "has", "does", "was"}}
#: verbs that take no object: "Go them out", "Sit it" are glitches
INTRANSITIVE = {"go", "come", "sit", "wait", "hurry", "stay", "arrive", "die", "sleep", "listen", "travel", "talk",
                "speak", "linger"}
OBJECTS = {"them", "him", "her", "it", "me", "us"}
#: imperative verbs that need an object: "Bring." / "Find." alone are cut off
TRANSITIVE = {"bring", "find", "take", "get", "give", "put", "fetch", "carry", "kill", "slay", "defeat", "hand",
              "deliver", "free", "tell", "make", "recover", "map", "scout", "escort", "meet", "face", "stop"}
GOLD = re.compile(r"\b\d+ gold\b")


def title_case(text: str) -> str:
    """Capitalise a title's words (filled-in item names are lower case), keeping small words small."""
    words = text.split(" ")
    return " ".join(w[:1].upper() + w[1:] if i == 0 or w.lower() not in SMALL_WORDS else w
                    for i, w in enumerate(words))


def _norm(text: str) -> str:
    return " ".join(WORD.findall(text.lower()))


class StoryState:
    """What one story has said so far (for the repetition checks) and the names it must not contradict."""

    def __init__(self, others: list[str] = ()):
        self.lines: set[str] = set()
        self.sentences: set[str] = set()
        self.phrases: set[tuple[str, ...]] = set()
        self.others = [o for o in others if o]

    @staticmethod
    def _sentences(raw: str) -> set[str]:
        """The line's sentences of two words or more, normalised ("Trust no one." said twice reads as a loop)."""
        out = set()
        for part in re.split(r"[.!?]+", raw):
            words = _slot_words(part)
            if len(words) >= 2:
                out.add(" ".join(words))
        return out

    @staticmethod
    def _grams(raw: str) -> set[tuple[str, ...]]:
        words = _slot_words(raw)
        return {tuple(words[i:i + PHRASE]) for i in range(len(words) - PHRASE + 1)}

    def repeat(self, raw: str) -> str:
        """Why ``raw`` repeats what the story already said ("" when it does not)."""
        if _norm(raw) in self.lines:
            return "repeats an earlier line of this story"
        for sentence in sorted(self._sentences(raw) & self.sentences):
            return f"repeats the sentence {sentence!r} said earlier in this story"
        for g in sorted(self._grams(raw) & self.phrases):
            phrase = " ".join(f"{{{w[4:]}}}" if w.startswith("slot") else w for w in g)
            return f"repeats the phrase {phrase!r} said earlier in this story"
        return ""

    def add(self, raw: str) -> None:
        self.lines.add(_norm(raw))
        self.sentences |= self._sentences(raw)
        self.phrases |= self._grams(raw)


def _slot_words(raw: str) -> list[str]:
    """A line's words with each placeholder as one word of its own (``{place}`` → ``slotplace``)."""
    return WORD.findall(PLACEHOLDER.sub(lambda m: f" slot{m.group(1)} ", raw).lower())


def _grammar(words: list[str]) -> str:
    """Why a sentence's words read as broken English ("" when they do not)."""
    for a, b in zip(words, words[1:]):
        if a == b and (a in FUNCTION_WORDS or a.startswith("slot")):
            return f"stutter {a!r} {b!r}"
        if b in AGREEMENT.get(a, ()):
            return f"agreement {a!r} {b!r}"
        if a in INTRANSITIVE and b in OBJECTS:
            return f"dangling object {a!r} {b!r}"
    return ""


def _articles(text: str) -> str:
    """Why a filled-in line misuses a/an ("a amulet") — "" when it does not."""
    words = WORD.findall(text.lower())
    for a, b in zip(words, words[1:]):
        if a == "a" and b[:1] in "aeiou" and not b.startswith(("one", "uni", "use", "eu")):
            return f"article {a!r} {b!r}"
        if a == "an" and b[:1] not in "aeiouh":
            return f"article {a!r} {b!r}"
    return ""


def check_line(raw: str, bound: dict[str, str], required=(), filt=None, vocab=None, state: StoryState | None = None,
               slots=None, copies=None) -> tuple[str | None, str]:
    """Fill a sampled line's placeholders; (text, "") when it is good, else (None, why).

    ``vocab`` (the words of the weights' training lines) rejects made-up words; ``slots`` (the placeholders
    the weights know, None = all) limits ``required``; ``state`` (the story so far) rejects repetition and
    names the story must not use."""
    raw = raw.strip()
    if not MIN_CHARS <= len(raw) <= MAX_CHARS:
        return None, f"length {len(raw)} (want {MIN_CHARS}..{MAX_CHARS} characters)"
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in raw) or "\ufffd" in raw:
        return None, "control or broken characters"
    if not re.search(r"[^\W\d_]", PLACEHOLDER.sub("", raw)) and not PLACEHOLDER.search(raw):
        return None, "no words"
    if copies and copy_key(raw) in copies:
        return None, "copies a training line word for word"
    names = PLACEHOLDER.findall(raw)
    for n in names:
        if n not in KNOWN:
            return None, f"unknown placeholder {{{n}}}"
        if not bound.get(n):
            return None, f"placeholder {{{n}}} has no part in this quest"
    for r in required:
        if r not in names and (slots is None or r in slots):
            return None, f"missing {{{r}}}"
    glued = GLUED.search(raw)
    if glued:  # "Give the {item} to {other}at {place}." (a flaw of the v4 corpus's grammar the model learned)
        return None, f"placeholder glued to a word: {glued.group(0)!r}"
    words = WORD.findall(PLACEHOLDER.sub(" ", raw).lower())
    if vocab is not None:
        unknown = [w for w in words if w not in vocab]
        if unknown:
            return None, f"unknown word {unknown[0]!r} (not in the weights' training lines)"
    flat = _slot_words(raw)  # a placeholder counts as a word
    for sentence in re.split(r"[.!?]+", raw):
        ws = _slot_words(sentence)
        why = _grammar(ws)
        if why:
            return None, why
        if len(ws) == 1 and ws[0] in TRANSITIVE:
            return None, f"dangling object: {ws[0]!r} without one"
        if ws and ws[0] in OBJECTS - {"it", "her"} and len(ws) > 1 and ws[1] not in ("and", "or", "too"):
            return None, f"dangling object: sentence starts with {ws[0]!r}"
    if flat and flat[-1] in DANGLING:  # "Meet {giver} an." — a sentence that stops mid-phrase
        return None, f"ends mid-phrase on {flat[-1]!r}"
    if state is not None:
        why = state.repeat(raw)
        if why:
            return None, why
    text = PLACEHOLDER.sub(lambda m: bound[m.group(1)], raw)
    if "{" in text or "}" in text or "|" in text:
        return None, "stray brace or bar"
    why = _articles(text)
    if why:
        return None, why
    if state is not None:
        rest = text.lower()
        for v in sorted({v for v in bound.values() if v}, key=len, reverse=True):
            rest = rest.replace(v.lower(), " ")
        for other in state.others:
            if re.search(rf"\b{re.escape(other.lower())}\b", rest):
                return None, f"names {other!r}, which is not part of this quest"
        if GOLD.search(rest):
            return None, f"names {GOLD.search(rest).group(0)!r}, which is not the reward"
    # capitalise every sentence start, including a filled-in name ("... . the Verdant Hall is not far.")
    text = SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), text[:1].upper() + text[1:])
    filt = filt or default_filter()
    if not filt.text_ok(text):
        return None, "content filter"
    return text, ""


def _nth_tone(tone: str, i: int) -> str:
    """The player's i-th answer of a kind (accept/decline at start, lore, haggle) in the i-th voice from the
    story's tone: the three answers offer three attitudes instead of one said thrice."""
    return TONES[(TONES.index(tone) + i) % len(TONES)] if tone in TONES else tone


def _tone(slot, rnd: int) -> str:
    """The tone a line is asked in: the story's, except that a player's line still rejected after
    ``OTHER_TONES_FROM`` rounds is asked in the other tones in turn (the player may answer in any voice; a
    tone's few ways to say no would otherwise all repeat what the story has said)."""
    if rnd < OTHER_TONES_FROM or slot.kind not in PLAYER_KINDS or slot.tone not in TONES:
        return slot.tone
    return TONES[(TONES.index(slot.tone) + rnd - OTHER_TONES_FROM + 1) % len(TONES)]


class _Slot:
    """One line to write: where it goes, its control tokens, and what its placeholders may use."""

    __slots__ = ("key", "kind", "quest", "tone", "bound", "required", "text", "dialogue")

    def __init__(self, key, kind, quest, tone, bound, required, dialogue=True):
        self.key, self.kind, self.quest, self.tone = key, kind, quest, tone
        self.bound, self.required, self.dialogue = bound, required, dialogue
        self.text: str | None = None


class StoryLM(Generator):
    id = "story-lm"
    kind = "story"
    version = "5"  # 4: weights retrained on the richer 13.5k-line corpus (copy keys stored), new_lines param;
    # 5: a placeholder glued to a word ("{other}at") is rejected
    description = "planned quests (grounded in level and cast) worded by a small BPE transformer with a KV cache"
    params = (
        Param("quest", "choice", "any", choices=("any", *QUEST_KINDS), help="quest type"),
        Param("tone", "choice", "any", choices=("any", *TONES), help="voice of the dialogue"),
        Param("temperature", "float", 0.8, min=0.0, max=2.0, help="sampling temperature (0 = greedy)"),
        Param("top_k", "int", 0, min=0, max=1000, help="keep the k most likely tokens (0 = all)"),
        Param("top_p", "float", 0.9, min=0.05, max=1.0, help="nucleus sampling mass"),
        Param("new_lines", "bool", False, help="refuse a word-for-word copy of a training line of more than "
                                                "8 words (more distinct lines, fewer accepted on the first sample)"),
        Param("weights", "str", "", help="your own weights from `conjure train story-lm` (a folder or a "
                                          ".safetensors file); empty = the shipped ones"),
    )

    def __init__(self, model_dir: str | Path | None = None):
        self.model_dir = Path(model_dir) if model_dir else MODEL_DIR
        self._models: dict[str, tuple] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ model
    def weights_path(self, weights: str = "") -> Path:
        path = Path(weights) if weights else self.model_dir
        return path / WEIGHTS if path.is_dir() or not weights else path

    def load(self, weights: str = ""):
        """(model, tokenizer), loaded once per weights file (``""`` = the shipped weights)."""
        key = str(self.weights_path(weights))
        with self._lock:
            if key not in self._models:
                self._models[key] = load_model(key)
            return self._models[key]

    # ------------------------------------------------------------------ evaluation
    def story_reference(self, params: dict) -> dict:
        """What ``conjure evaluate`` needs and cannot know by itself (see ``engine.eval_stories``):
        ``training_lines`` (texts the weights in use were trained on, placeholders kept: copies are not
        new lines) and ``names`` (item, place and sum-of-gold names a story could wrongly use)."""
        path = self.weights_path(params.get("weights", ""))
        files = [CORPUS] if path == self.model_dir / WEIGHTS else []
        card = path.parent / "model.json"
        if not files and card.is_file():
            try:
                files = [Path(d["path"]) for d in json.loads(card.read_text("utf-8")).get("data", [])]
            except (ValueError, KeyError, TypeError):
                files = []
        lines = []
        for f in files:
            if f.is_file():
                lines += [ln.split("|", 3)[-1].strip() for ln in f.read_text("utf-8").splitlines()
                          if ln.strip() and not ln.startswith("#")]
        names = list(ITEMS) + [f"the {a} {n}" for a in ROOM_ADJ for n in ROOM_NOUN]
        return {"training_lines": lines, "names": names}

    # ------------------------------------------------------------------ generation
    def generate(self, request):
        return self.generate_batch([request])[0]

    def generate_batch(self, requests):
        import torch

        by_weights: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            by_weights.setdefault(r.params["weights"], []).append(i)
        if len(by_weights) > 1:  # one batch per model
            out: list = [None] * len(requests)
            for idx in by_weights.values():
                for i, story in zip(idx, self.generate_batch([requests[i] for i in idx])):
                    out[i] = story
            return out
        model, tok = self.load(requests[0].params["weights"] if requests else "")
        stories = [self._plan(req) for req in requests]
        filt = default_filter()
        threads = torch.get_num_threads()
        # one torch thread, batched or not: small decode steps gain nothing from more, and on a busy machine
        # a second thread makes a batch of stories up to 10x slower (measured)
        torch.set_num_threads(1)
        try:
            pending = [(i, s) for i, st in enumerate(stories) for s in st["slots"]]
            for rnd in range(RESAMPLE_ROUNDS):
                if not pending:
                    break
                # rows are grouped by the generation parameters (one request's params may differ)
                groups: dict[tuple, list] = {}
                for i, s in pending:
                    p = requests[i].params
                    temp = p["temperature"] if rnd == 0 else min(MAX_TEMPERATURE, p["temperature"] + HOTTER * rnd)
                    groups.setdefault((temp, p["top_k"], p["top_p"]), []).append((i, s))
                raws: dict[int, str] = {}
                for (temp, top_k, top_p), rows in groups.items():
                    texts = self._sample(model, tok, [s for _, s in rows], [requests[i] for i, _ in rows], rnd,
                                         temp, top_k, top_p)
                    raws.update({id(s): t for (_, s), t in zip(rows, texts)})
                nxt = []
                for i, s in pending:  # in story order: the repetition checks see the lines written before
                    st = stories[i]
                    raw = raws[id(s)]
                    text, why = check_line(raw, s.bound, s.required, filt, tok.vocab,
                                           st["said"] if s.dialogue else st["beats_said"], tok.slots,
                                           tok.copies if requests[i].params["new_lines"] else None)
                    if text is None:
                        st["counts"]["filtered" if why == "content filter" else "rejected"] += 1
                        st["rejections"].append({"line": s.key, "round": rnd, "why": why, "text": raw})
                        nxt.append((i, s))
                    else:
                        s.text = text
                        (st["said"] if s.dialogue else st["beats_said"]).add(raw)
                        if rnd == 0:
                            st["counts"]["first"] += 1
                pending = nxt
            for i, s in pending:
                text, _ = check_line(fallback_line(s.kind, s.quest, s.tone), s.bound, (), filt)
                s.text = text or "..."
                stories[i]["counts"]["fallback"] += 1
        finally:
            torch.set_num_threads(threads)
        return [self._build(req, st) for req, st in zip(requests, stories)]

    @staticmethod
    def _sample(model, tok, slots, reqs, rnd, temp, top_k, top_p):
        import torch

        from .learned_stories.model import sample
        from .learned_stories.tokenizer import EOS

        prompts = torch.tensor([tok.prompt(s.quest, _tone(s, rnd), s.kind) for s in slots])
        gens = [r.torch_generator("line", s.key, rnd) for s, r in zip(slots, reqs)]
        out = sample(model, prompts, gens, MAX_TOKENS, temperature=temp, top_k=top_k, top_p=top_p)
        return [tok.decode(row) if EOS in row else "" for row in out.tolist()]  # no EOS: the line ran too long

    def _plan(self, req) -> dict:
        rng = req.rng()
        pl = plan(req, rng, req.params["quest"], req.params["tone"])
        reward = pick(rng, REWARDS)
        q, t = pl.kind, pl.tone
        full = pl.bound(reward)
        if q == "deliver":  # in a deliver quest {place} is where the item goes
            full["place"] = pl.b["name"]
        bound = {k: (v if k in ROLES[q] else "") for k, v in full.items()}
        slots = []

        def slot(key, kind, required=None, dialogue=True, b=None, tone=None):
            need = REQUIRED.get((kind, q if kind == "ask" else None), ()) if required is None else required
            s = _Slot(key, kind, q, tone or t, b or bound, need, dialogue)
            slots.append(s)
            return s

        out = {"plan": pl, "reward": reward, "slots": slots,
               "title": slot("title", "title", (), dialogue=False),
               "greet": slot("greet", "greet"), "ask": slot("ask", "ask"), "promise": slot("promise", "promise"),
               "accept": [slot(f"accept{i}", "accept", tone=_nth_tone(t, i)) for i in range(3)],
               "haggle": slot("haggle", "haggle"), "lore_q": slot("lore_q", "lore_q"),
               "decline": [slot(f"decline{i}", "decline", tone=_nth_tone(t, i)) for i in range(3)],
               "lore_a": slot("lore_a", "lore_a"), "place": slot("place", "place"), "offer": slot("offer", "offer"),
               "thanks": slot("thanks", "thanks"), "bye": slot("bye", "bye"),
               "item": slot("item", "item") if q in ("fetch", "deliver") else None}
        beats = []
        for i, (bk, p, c, it) in enumerate(pl.beat_specs()):
            b = bound
            if p is not None:  # a beat's {place} is the place of that beat
                name = pl.a["name"] if p == pl.a["id"] else pl.b["name"]
                b = {**bound, "place": name}
            beats.append(slot(f"beat{i}", f"beat_{bk}", BEAT_REQUIRED.get(bk, ()), dialogue=False, b=b))
        out["beats"] = beats
        # names the story must not use: the context's (or the invented world's) other places and characters
        ours = {v.lower() for v in full.values() if v}
        others = [r["name"] for r in pl.all_places + pl.all_chars] + list(ITEMS)
        out["said"] = StoryState([o for o in dict.fromkeys(others) if o.lower() not in ours])
        out["beats_said"] = StoryState(out["said"].others)
        out["counts"] = {"filtered": 0, "rejected": 0, "fallback": 0, "first": 0}
        out["rejections"] = []
        return out

    @staticmethod
    def _build(req, st) -> Story:
        pl = st["plan"]
        G = pl.giver["id"]
        acc, dec = [s.text for s in st["accept"]], [s.text for s in st["decline"]]
        ask = st["ask"].text
        thanks = [st["thanks"].text] + ([st["item"].text] if st["item"] is not None else [])
        nodes = [
            DialogueNode("start", G, [st["greet"].text, ask, st["promise"].text],
                         [Choice(acc[0], "accept", ["quest_accepted"]),
                          Choice(st["haggle"].text, "haggle", ["asked_reward"]),
                          Choice(st["lore_q"].text, "lore", ["asked_lore"]),
                          Choice(dec[0], "decline", ["quest_declined"])]),
            DialogueNode("lore", G, [st["lore_a"].text, st["place"].text],
                         [Choice(acc[1], "accept", ["quest_accepted"]),
                          Choice(dec[1], "decline", ["quest_declined"])]),
            DialogueNode("haggle", G, [st["offer"].text],
                         [Choice(acc[2], "accept", ["quest_accepted", "reward_agreed"]),
                          Choice(dec[2], "decline", ["quest_declined"])]),
            DialogueNode("accept", G, thanks),
            DialogueNode("decline", G, [st["bye"].text]),
        ]
        beats = pl.beats([s.text for s in st["beats"]])
        places, chars, items = pl.refs()
        title = title_case(st["title"].text.rstrip("."))
        c = st["counts"]
        n = len(st["slots"])
        return Story(id=f"story-{req.derive('id') % 10**8:08d}", title=title,
                     quest=Quest(pl.kind, G, ask, beats, st["reward"]), start="start", nodes=nodes,
                     places=places, characters=chars, items=items,
                     metadata={"tone": pl.tone, "requested_quest": pl.requested, "grounded": pl.grounded,
                               "lines": n, "accepted_first": c["first"], "filtered_lines": c["filtered"],
                               "rejected_lines": c["rejected"], "fallback_lines": c["fallback"],
                               "rejections": st["rejections"]})

    # ------------------------------------------------------------------ training
    train_options = ("tiny", "batch", "d_model", "n_layers", "vocab", "lr", "minutes")

    def train(self, job):
        from .learned_stories.train import read_examples, train

        tiny = bool(job.options.get("tiny"))
        o = job.options
        minutes = o.get("minutes")
        batch = int(o.get("batch", 16 if tiny else 48))
        # default: 8 passes, and at least MIN_STEPS optimiser steps (a user's 500 lines need ~50 passes)
        n = len(read_examples(job.data)[0])
        epochs = job.epochs or max(8, -(-(MIN_TINY_STEPS if tiny else MIN_STEPS) * batch // n))
        return train(job.data, job.out, seed=job.seed, epochs=epochs,
                     batch=batch, lr=float(o.get("lr", 3e-3)),
                     d_model=int(o.get("d_model", 32 if tiny else 128)), n_layers=int(o.get("n_layers", 1 if tiny else 3)),
                     n_heads=2 if tiny else 4, vocab_size=int(o.get("vocab", 300 if tiny else 1280)),
                     progress_factory=lambda steps: job.progress(steps, "training story-lm"),
                     time_limit=float(minutes) * 60 if minutes else None)


def load_model(path):
    """A trained TinyGPT and its tokenizer from safetensors (never pickle)."""
    from engine.weights import check_config, load_safetensors

    from .learned_stories.model import Config, TinyGPT
    from .learned_stories.tokenizer import Tokenizer

    path = Path(path)
    if not path.is_file():
        raise InputError(f"story-lm: no weights at {path} (train them: conjure train story-lm --data FILES)")
    tensors = load_safetensors(path)
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != "story-lm/2":
        raise InputError(f"{path}: story-lm weights of format {meta.get('format', '?')!r}; this version reads "
                         "'story-lm/2' (retrain them with conjure train story-lm)")
    try:
        raw_cfg = json.loads(meta["config"])
        check_config(raw_cfg, {"vocab_size": (1, 65536), "d_model": (8, 1024), "n_layers": (1, 24),
                               "n_heads": (1, 32), "block": (8, 4096), "dropout": (0.0, 1.0)}, str(path))
        cfg = Config(**raw_cfg)
        tok = Tokenizer.from_json(meta["tokenizer"])
        tok.vocab = frozenset(json.loads(meta["words"]))
        tok.kinds = frozenset(json.loads(meta["kinds"]))
        tok.slots = frozenset(json.loads(meta["slots"]))
        tok.cells = frozenset(json.loads(meta.get("cells", "[]")))
        tok.copies = frozenset(json.loads(meta.get("copies", "[]")))
    except (KeyError, TypeError, ValueError, Exception) as e:  # tokenizers raises its own Exception type
        if isinstance(e, InputError):
            raise
        raise InputError(f"{path}: not story-lm weights ({e})") from None
    if tok.vocab_size != cfg.vocab_size:
        raise InputError(f"{path}: tokenizer has {tok.vocab_size} tokens, the config {cfg.vocab_size}")
    model = TinyGPT(cfg)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        raise InputError(f"{path}: weights do not fit the story-lm config ({e})") from None
    model.eval()
    return model, tok


@hookimpl
def register_story_generators(register):
    register(StoryLM())
