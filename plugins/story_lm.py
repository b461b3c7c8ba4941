"""``story-lm``: quests planned by the story planner, worded by a small char transformer.

The planner (:mod:`plugins.story_plan`) grounds the quest in the context (the level's regions, the cast's
characters; hostile ones as foes) and lays out beats and a dialogue graph; the language model writes every
line (title, greeting, the ask, the player's choices, lore, the offer, thanks, farewell, beat texts, place
and item descriptions) conditioned on control tokens (quest kind, tone, line kind). Lines use placeholders
(``{place}``, ``{giver}``, ``{item}``, ``{foe}``, ``{other}``, ``{place2}``, ``{reward}``) that the planner
fills with grounded names, so every id a story mentions comes from its context.

Every line is checked: unknown or unavailable placeholders, a missing required one (an ask must name its
place), stray braces, too short or too long, or the content filter (:mod:`engine.textfilter`) rejects it;
rejected lines are resampled (``metadata["filtered_lines"]``, ``["rejected_lines"]``), and after
``RESAMPLE_ROUNDS`` a line falls back to a safe authored one (``["fallback_lines"]``).

All lines of all stories in a ``generate_batch`` call are sampled in one batched KV-cache pass (then one
pass per resampling round). Each line has its own ``torch.Generator`` derived from the request, so a
story is the same alone or in a batch, and byte-identical across processes (fp32, one torch thread).
torch is imported on first use only.
"""
from __future__ import annotations

import re
import threading
from pathlib import Path

from engine import Choice, DialogueNode, Generator, Param, Quest, Story, hookimpl
from engine.textfilter import default_filter

from .learned_stories.corpus import ACCEPT, ASK, BEATS, BYE, DECLINE, HAGGLE, LORE_Q, OFFER, THANKS, TITLES
from .story_plan import QUEST_KINDS, TONES, plan
from .words import pick

MODEL_DIR = Path(__file__).resolve().parent / "data" / "models" / "story-lm"
WEIGHTS = "story-lm.safetensors"
MAX_NEW = 120
MIN_LEN = 2
RESAMPLE_ROUNDS = 8
PLACEHOLDER = re.compile(r"\{([a-z0-9_]*)\}")
KNOWN = ("place", "place2", "giver", "item", "foe", "other", "reward")
REWARDS = ("50 gold", "100 gold", "200 gold", "a silver blade", "my family's old ring", "a favour owed",
           "120 gold and a horse", "an enchanted lantern")
#: line kinds conditioned on the quest kind; the others get ``any``
QUEST_CONDITIONED = {"ask", "title"}
TONE_FREE = {"title", "lore_q"}
REQUIRED = {("ask", "fetch"): ("place", "item"), ("ask", "slay"): ("place", "foe"),
            ("ask", "rescue"): ("place", "other"), ("ask", "deliver"): ("place2", "other"),
            ("ask", "explore"): ("place2",), ("lore_q", None): ("place",), ("lore_a", None): ("place",),
            ("offer", None): ("reward",), ("place", None): ("place",), ("item", None): ("item",)}


def _fallback(kind: str, quest: str, tone: str) -> str:
    """A safe authored line for a slot whose samples were all rejected."""
    if kind == "ask":
        return ASK[quest][tone][0]
    if kind == "title":
        return TITLES[quest][0]
    if kind.startswith("beat_"):
        return BEATS[kind[5:]][0]
    table = {"accept": ACCEPT, "haggle": HAGGLE, "decline": DECLINE, "offer": OFFER, "thanks": THANKS,
             "bye": BYE}
    if kind in table:
        return table[kind][tone][0]
    return {"greet": "Hello, traveller.", "lore_q": LORE_Q[0], "lore_a": "{place} is old and quiet.",
            "place": "{place} is quiet.", "item": "The {item} is old."}.get(kind, "...")


class _Slot:
    """One line to write: where it goes, its control tokens, and what its placeholders may use."""

    __slots__ = ("key", "kind", "quest", "tone", "bound", "required", "text", "tries")

    def __init__(self, key, kind, quest, tone, bound, required):
        self.key, self.kind, self.quest, self.tone = key, kind, quest, tone
        self.bound, self.required = bound, required
        self.text: str | None = None
        self.tries = 0


WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


#: words a line may not end on (the model sometimes stops mid-phrase)
DANGLING = {"a", "an", "the", "to", "of", "at", "by", "with", "and", "or", "but", "my", "your", "their", "our"}
SENTENCE_START = re.compile(r"([.!?]\s+)([a-z])")
SMALL_WORDS = {"a", "an", "and", "at", "by", "for", "in", "of", "on", "or", "the", "to", "with"}


def title_case(text: str) -> str:
    """Capitalise a title's words (filled-in item names are lower case), keeping small words small."""
    words = text.split(" ")
    return " ".join(w[:1].upper() + w[1:] if i == 0 or w.lower() not in SMALL_WORDS else w
                    for i, w in enumerate(words))


def check_line(raw: str, bound: dict[str, str], required=(), filt=None, vocab=None) -> tuple[str | None, str]:
    """Fill a sampled line's placeholders; (text, "") when it is good, else (None, reason).

    ``vocab`` (the training corpus's words, kept with the weights) rejects lines with made-up words."""
    if not MIN_LEN <= len(raw.strip()) <= MAX_NEW:
        return None, "length"
    words = WORD.findall(PLACEHOLDER.sub(" ", raw).lower())
    if vocab is not None and any(w not in vocab for w in words):
        return None, "words"
    if any(a == b for a, b in zip(words, words[1:])):  # stutter such as "it it" reads as a glitch
        return None, "repeat"
    names = PLACEHOLDER.findall(raw)
    for n in names:
        if n not in KNOWN or not bound.get(n):
            return None, "placeholder"
    for r in required:
        if r not in names:
            return None, "placeholder"
    tail = WORD.findall(PLACEHOLDER.sub(" name ", raw).lower())[-1:]  # a placeholder counts as a word
    if tail and tail[0] in DANGLING:  # "Meet {giver} an." — a sentence that stops mid-phrase
        return None, "dangling"
    text = PLACEHOLDER.sub(lambda m: bound[m.group(1)], raw.strip())
    if "{" in text or "}" in text or "|" in text:
        return None, "malformed"
    # capitalise every sentence start, including a filled-in name ("... . the Verdant Hall is not far.")
    text = SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), text[:1].upper() + text[1:])
    filt = filt or default_filter()
    if not filt.text_ok(text):
        return None, "filter"
    return text, ""


class StoryLM(Generator):
    id = "story-lm"
    kind = "story"
    version = "2"
    description = "planned quests (grounded in level and cast) worded by a small char transformer with a KV cache"
    params = (
        Param("quest", "choice", "any", choices=("any", *QUEST_KINDS), help="quest type"),
        Param("tone", "choice", "any", choices=("any", *TONES), help="voice of the dialogue"),
        Param("temperature", "float", 0.35, min=0.0, max=2.0, help="sampling temperature (0 = greedy)"),
        Param("top_k", "int", 0, min=0, max=1000, help="keep the k most likely characters (0 = all)"),
        Param("top_p", "float", 0.95, min=0.05, max=1.0, help="nucleus sampling mass"),
        Param("weights", "str", "", help="your own weights from `conjure train story-lm` (a folder or a "
                                          ".safetensors file); empty = the shipped ones"),
    )

    def __init__(self, model_dir: str | Path | None = None):
        self.model_dir = Path(model_dir) if model_dir else MODEL_DIR
        self._models: dict[str, tuple] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ model
    def load(self, weights: str = ""):
        """(model, tokenizer), loaded once per weights file (``""`` = the shipped weights)."""
        path = Path(weights) if weights else self.model_dir
        if path.is_dir() or not weights:
            path = path / WEIGHTS
        key = str(path)
        with self._lock:
            if key not in self._models:
                self._models[key] = load_model(path)
            return self._models[key]

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
        stories = []
        all_slots: list[_Slot] = []
        for req in requests:
            st = self._plan(req)
            stories.append(st)
            all_slots += st["slots"]
        filt = default_filter()
        counts = [{"filtered": 0, "rejected": 0, "fallback": 0} for _ in requests]
        owner = {id(s): i for i, st in enumerate(stories) for s in st["slots"]}
        threads = torch.get_num_threads()
        # one torch thread, batched or not: small decode steps gain nothing from more, and on a busy machine
        # a second thread makes a batch of stories up to 10x slower (measured)
        torch.set_num_threads(1)
        try:
            pending = list(all_slots)
            for rnd in range(RESAMPLE_ROUNDS):
                if not pending:
                    break
                # rows are grouped by the generation parameters (one request's params may differ)
                groups: dict[tuple, list[_Slot]] = {}
                for s in pending:
                    p = requests[owner[id(s)]].params
                    groups.setdefault((p["temperature"], p["top_k"], p["top_p"]), []).append(s)
                nxt = []
                for (temp, top_k, top_p), slots in groups.items():
                    texts = self._sample(model, tok, slots, [requests[owner[id(s)]] for s in slots], rnd,
                                         temp, top_k, top_p)
                    for s, raw in zip(slots, texts):
                        text, why = check_line(raw, s.bound, s.required, filt, tok.vocab)
                        if text is None:
                            counts[owner[id(s)]]["filtered" if why == "filter" else "rejected"] += 1
                            nxt.append(s)
                        else:
                            s.text = text
                pending = nxt
            for s in pending:
                text, _ = check_line(_fallback(s.kind, s.quest, s.tone), s.bound, (), filt)
                s.text = text or "..."
                counts[owner[id(s)]]["fallback"] += 1
        finally:
            torch.set_num_threads(threads)
        return [self._build(req, st, c) for req, st, c in zip(requests, stories, counts)]

    @staticmethod
    def _sample(model, tok, slots, reqs, rnd, temp, top_k, top_p):
        import torch

        from .learned_stories.model import sample

        prompts = torch.tensor([tok.control(s.quest if s.kind in QUEST_CONDITIONED else "any",
                                            "any" if s.kind in TONE_FREE else s.tone, s.kind) for s in slots])
        gens = [r.torch_generator("line", s.key, rnd) for s, r in zip(slots, reqs)]
        out = sample(model, prompts, gens, MAX_NEW, temperature=temp, top_k=top_k, top_p=top_p)
        texts = []
        for row in out.tolist():
            if 2 not in row:  # no EOS: the line ran too long
                texts.append("")
            else:
                texts.append(tok.decode(row))
        return texts

    def _plan(self, req) -> dict:
        rng = req.rng()
        pl = plan(req, rng, req.params["quest"], req.params["tone"])
        reward = pick(rng, REWARDS)
        bound = pl.bound(reward)
        q, t = pl.kind, pl.tone
        slots = []

        def slot(key, kind):
            req_names = REQUIRED.get((kind, q if kind == "ask" else None), ())
            s = _Slot(key, kind, q, t, bound, req_names)
            slots.append(s)
            return s

        specs = pl.beat_specs()
        beat_slots = []
        for i, (bk, p, c, it) in enumerate(specs):
            s = slot(f"beat{i}", f"beat_{bk}")
            # a beat's text must name what the beat refers to
            need = []
            if bk in ("goto", "explore") and p:
                need.append("place")
            if bk in ("talk", "return"):
                need.append("giver")
            if bk == "defeat":
                need.append("foe")
            if bk in ("escort", "deliver"):
                need.append("other")
            s.required = tuple(need)
            if bk in ("goto", "explore") and p == pl.b["id"] and p != pl.a["id"]:
                s.bound = {**bound, "place": pl.b["name"], "place2": pl.b["name"]}
            beat_slots.append(s)
        return {"plan": pl, "reward": reward, "slots": slots, "beats": beat_slots,
                "title": slot("title", "title"), "greet": slot("greet", "greet"), "ask": slot("ask", "ask"),
                "accept": [slot(f"accept{i}", "accept") for i in range(3)],
                "decline": [slot(f"decline{i}", "decline") for i in range(3)],
                "haggle": slot("haggle", "haggle"), "lore_q": slot("lore_q", "lore_q"),
                "lore_a": slot("lore_a", "lore_a"), "place": slot("place", "place"),
                "offer": slot("offer", "offer"), "thanks": slot("thanks", "thanks"),
                "bye": slot("bye", "bye"),
                "item": slot("item", "item") if pl.kind in ("fetch", "deliver") else None}

    @staticmethod
    def _build(req, st, counts) -> Story:
        pl = st["plan"]
        G = pl.giver["id"]
        acc, dec = [s.text for s in st["accept"]], [s.text for s in st["decline"]]
        ask = st["ask"].text
        thanks = [st["thanks"].text] + ([st["item"].text] if st["item"] is not None else [])
        nodes = [
            DialogueNode("start", G, [st["greet"].text, ask],
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
        return Story(id=f"story-{req.derive('id') % 10**8:08d}", title=title,
                     quest=Quest(pl.kind, G, ask, beats, st["reward"]), start="start", nodes=nodes,
                     places=places, characters=chars, items=items,
                     metadata={"tone": pl.tone, "requested_quest": pl.requested, "grounded": pl.grounded,
                               "filtered_lines": counts["filtered"], "rejected_lines": counts["rejected"],
                               "fallback_lines": counts["fallback"]})

    # ------------------------------------------------------------------ training
    train_options = ("tiny", "batch", "d_model", "n_layers")

    def train(self, job):
        from .learned_stories.train import read_examples, train

        n = len(read_examples(job.data))
        epochs = job.epochs or 15
        tiny = bool(job.options.get("tiny"))
        batch = int(job.options.get("batch", 24))
        steps = max(1, -(-epochs * n // batch))
        with job.progress(steps, "training story-lm") as p:
            result = train(job.data, job.out, seed=job.seed, steps=steps, batch=batch, progress=p,
                           d_model=int(job.options.get("d_model", 32 if tiny else 128)),
                           n_layers=int(job.options.get("n_layers", 1 if tiny else 2)))
        result["epochs"] = epochs
        return result


def load_model(path):
    """A trained TinyGPT and its tokenizer from safetensors (never pickle)."""
    import json

    from engine.errors import InputError
    from engine.weights import load_safetensors

    from .learned_stories.model import Config, TinyGPT
    from .learned_stories.tokenizer import Tokenizer

    path = Path(path)
    if not path.is_file():
        raise InputError(f"story-lm: no weights at {path} (train them: conjure train story-lm --data FILES)")
    tensors = load_safetensors(path)
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    from engine.weights import check_config

    try:
        raw_cfg = json.loads(meta["config"])
        check_config(raw_cfg, {"vocab_size": (1, 4096), "d_model": (8, 1024), "n_layers": (1, 24),
                               "n_heads": (1, 32), "block": (8, 4096), "dropout": (0.0, 1.0)}, str(path))
        cfg = Config(**raw_cfg)
        tok = Tokenizer.from_json(meta["chars"])
        tok.vocab = frozenset(json.loads(meta["words"])) if "words" in meta else None
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{path}: not story-lm weights ({e})") from None
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
