"""Story metrics for ``conjure evaluate`` (any story generator: ``story-lm``, ``grammar-story``).

``count`` stories are made **with context** (a level and its cast, one context per group of
:data:`PER_CONTEXT` stories, from the engine's default level and character generators) and ``count``
**without** (the generator invents the world). Measured:

- **fallback lines**: the share of lines that fell back to authored text (``metadata["fallback_lines"]`` /
  ``metadata["lines"]``, for generators that report them);
- **first-sample acceptance**: the share of lines accepted on their first sample
  (``metadata["accepted_first"]`` / ``metadata["lines"]``);
- **faithfulness over all paths**: every path through the dialogue from ``start`` to a choice that sets
  ``quest_accepted`` is walked; the text the player has seen by then (the lines of the nodes visited and the
  choices taken) must state every fact the quest needs: **who** asks (the giver's name), **what** (the
  item, foe, captive or recipient of the objective beat, or the place to explore), **where** (the place
  of the first beat that has one) and the **reward**. A story fails when some path misses one;
- **contradictions**: a line (dialogue, choices, beats, title) that names a place or character of the
  context, a name from the generator's :class:`~engine.generator.StoryReference` ``names`` or a sum of
  gold that is not part of this story;
- **ids not in context**: places, characters and beat references that are not in the level and cast given;
- **distinct lines**: distinct line texts over all lines; a line whose template (the story's names put back
  as slots) copies a training line of more than 8 words is not counted as new;
- **throughput**: stories per second through ``generate_batch`` in batches of 16 (the generator decides its
  torch threads; story-lm uses one), best of three, by the wall clock and by this process's CPU time (on a
  shared machine the wall clock also counts other people's work).

The report (``report.md``) holds the table of targets and 20 random stories in full, so a person can read
them next to the numbers. Nothing here imports a plugin: what is generator-specific comes from the
generator's ``story_reference(params)``.
"""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from .content import Story
from .seeds import derive
from .serialize import atomic_write

PER_CONTEXT = 10        # stories per generated context (level + cast)
THROUGHPUT_BATCH = 16
SHOWN = 20              # random stories printed in full in the report
COPY_WORDS = 8          # a copied training line longer than this is not a new line
ACCEPT_FLAG = "quest_accepted"
TARGETS = {  # name: (comparison, target, what it measures)
    "fallback_rate": ("==", 0.0, "lines that fell back to authored text"),
    "first_sample_rate": (">=", 0.90, "lines accepted on the first sample"),
    "unfaithful_stories": ("==", 0, "stories where some path misses a needed fact, or a line contradicts the plan"),
    "ids_not_in_context": ("==", 0, "ids in the story that are not in its context"),
    "distinct_lines": (">=", 0.90, "distinct lines (no copy of a training line longer than 8 words)"),
    "stories_per_second": (">=", 16.0, "throughput, batch 16, one thread"),
}
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SLOT = re.compile(r"\{[a-z0-9_]*\}")
_GOLD = re.compile(r"\b\d+ gold\b")


# --------------------------------------------------------------------------------------------- helpers
def reference_of(generator: Any, params: dict) -> dict:
    """The generator's ``story_reference(params)`` (the StoryReference protocol), or {} without one."""
    fn = getattr(generator, "story_reference", None)
    return dict(fn(params) or {}) if callable(fn) else {}


def _names(story: Story) -> dict[str, str]:
    return {r["id"]: r["name"] for key in ("places", "characters", "items") for r in getattr(story, key)}


def facts(story: Story) -> dict[str, list[str]]:
    """The facts a player needs before accepting: {"who", "what", "where", "reward"} -> names to find."""
    names = _names(story)
    q = story.quest
    beats = [b for b in q.beats if b.kind not in ("talk", "return")]
    objective = beats[-1] if beats else None
    what: list[str] = []
    if objective is not None:
        if objective.character and objective.character != q.giver:
            what.append(names.get(objective.character, objective.character))
        if objective.item:
            what.append(names.get(objective.item, objective.item))
        if not what and objective.place:
            what.append(names.get(objective.place, objective.place))
    where = next((names.get(b.place, b.place) for b in beats if b.place), None)
    out = {"who": [names.get(q.giver, q.giver)], "what": what, "where": [where] if where else []}
    if q.reward:
        out["reward"] = [q.reward]
    return out


def accept_paths(story: Story) -> list[tuple[list[str], str]]:
    """Every path from ``start`` to an accepting choice: (the texts seen before accepting, a label)."""
    nodes = {n.id: n for n in story.nodes}
    out: list[tuple[list[str], str]] = []

    def walk(nid: str, seen: list[str], visited: tuple[str, ...]):
        node = nodes.get(nid)
        if node is None or nid in visited:
            return
        seen = seen + list(node.lines)
        for c in node.choices:
            label = " > ".join((*visited, nid)) + f" > [{c.text}]"
            if ACCEPT_FLAG in c.set_flags:
                out.append((seen, label))
            else:
                walk(c.target, seen + [c.text], (*visited, nid))

    walk(story.start, [], ())
    return out


def missing_facts(story: Story) -> list[str]:
    """``"path: fact 'name'"`` for each fact some accepting path never states (empty: faithful)."""
    need = facts(story)
    out = []
    for seen, label in accept_paths(story):
        text = " ".join(seen).lower()
        for fact, values in need.items():
            for v in values:
                if v.lower() not in text:
                    out.append(f"{label}: {fact} {v!r} never said")
    return out


def all_lines(story: Story) -> list[str]:
    return [story.title] + [line for n in story.nodes for line in n.lines] + \
        [c.text for n in story.nodes for c in n.choices] + [b.text for b in story.quest.beats]


def contradictions(story: Story, foreign: list[str]) -> list[str]:
    """Lines that name something (``foreign`` names, a sum of gold) that is not part of this story."""
    ours = sorted({v for v in _names(story).values() if v} | ({story.quest.reward} if story.quest.reward else set()),
                  key=len, reverse=True)
    ours_l = {o.lower() for o in ours}
    out = []
    for line in all_lines(story):
        rest = line.lower()
        for o in ours:
            rest = rest.replace(o.lower(), " ")
        for f in foreign:
            fl = f.lower()
            if fl not in ours_l and re.search(rf"\b{re.escape(fl)}\b", rest):
                out.append(f"{line!r} names {f!r}")
                break
        else:
            m = _GOLD.search(rest)
            if m:
                out.append(f"{line!r} names {m.group(0)!r}, not the reward")
    return out


def ids_outside(story: Story, context: dict) -> list[str]:
    level, cast = context.get("level"), context.get("cast")
    out = []
    if level is not None:
        ok = {r.id for r in level.regions} | {e.id for e in level.entities}
        out += [f"place {p['id']}" for p in story.places if p["id"] not in ok]
        out += [f"beat {b.id} place {b.place}" for b in story.quest.beats if b.place and b.place not in ok]
    if cast is not None:
        ok = {c.id for c in cast.characters}
        out += [f"character {c['id']}" for c in story.characters if c["id"] not in ok]
        out += [f"beat {b.id} character {b.character}" for b in story.quest.beats
                if b.character and b.character not in ok]
        if story.quest.giver not in ok:
            out.append(f"giver {story.quest.giver}")
    return out


def _template(line: str, story: Story) -> str:
    """A line with the story's names put back as slots, normalised (for comparing with training lines)."""
    text = line.lower()
    for v in sorted({v for v in _names(story).values() if v} | ({story.quest.reward} if story.quest.reward else set()),
                    key=len, reverse=True):
        text = text.replace(v.lower(), " {} ")
    return " ".join(_WORD.findall(text.replace("{}", " slot ")))


def _train_templates(lines: list[str]) -> set[str]:
    out = set()
    for ln in lines:
        t = " ".join(_WORD.findall(_SLOT.sub(" slot ", ln.lower())))
        if len(t.split()) > COPY_WORDS:
            out.add(t)
    return out


def render(story: Story) -> str:
    """A story as a player would read it: the dialogue node by node, then the quest log."""
    names = _names(story)
    q = story.quest
    out = [f"### {story.title}", "",
           f"*{q.kind}, {story.metadata.get('tone', '?')}; giver {names.get(q.giver, q.giver)}; reward {q.reward}*", ""]
    for n in story.nodes:
        out.append(f"**[{n.id}]**")
        who = names.get(n.speaker, n.speaker)
        out += [f"> {who}: {line}" for line in n.lines]
        out += [f"> - *{c.text}* → {c.target}" for c in n.choices]
        out.append("")
    out += ["Quest log: " + " / ".join(f"{b.kind}: {b.text}" for b in q.beats), ""]
    rej = story.metadata.get("rejections") or []
    if rej:
        out += [f"Rejected samples ({len(rej)}): " + "; ".join(f"{r.get('line')}: {r.get('why')}" for r in rej[:6]) +
                (" …" if len(rej) > 6 else ""), ""]
    return "\n".join(out)


def _contexts(engine: Any, seed: int | str, n: int) -> list[dict]:
    out = []
    for i in range(n):
        s = derive(seed, "context", i)
        level = engine.generate("level", None, s)
        cast = engine.generate("character", None, s, context={"level": level})
        out.append({"level": level, "cast": cast})
    return out


def _ok(value: Any, cmp: str, target: Any) -> bool:
    return value == target if cmp == "==" else value >= target


# --------------------------------------------------------------------------------------------- evaluate
def evaluate(engine: Any, generator: Any, *, count: int, seed: int | str, params: dict,
             report: Path | None) -> dict:
    gen_id = generator.id
    checked = engine.request("story", gen_id, 0, params).params
    ref = reference_of(generator, checked)
    foreign_base = list(ref.get("names") or ())
    train_templates = _train_templates(list(ref.get("training_lines") or ()))
    contexts = _contexts(engine, seed, max(1, -(-count // PER_CONTEXT)))
    sets: dict[str, list[tuple[Story, dict]]] = {"with context": [], "without context": []}
    # with context: one batch per context (the generator batches them)
    for ci, ctx in enumerate(contexts):
        seeds = [derive(seed, "with", i) for i in range(ci * PER_CONTEXT, min(count, (ci + 1) * PER_CONTEXT))]
        for st in engine.generate_batch("story", gen_id, seeds, params, context=ctx):
            sets["with context"].append((st, ctx))
    seeds = [derive(seed, "without", i) for i in range(count)]
    for k in range(0, count, 64):
        for st in engine.generate_batch("story", gen_id, seeds[k:k + 64], params):
            sets["without context"].append((st, {}))

    metrics: dict[str, Any] = {"generator": gen_id, "count": count}
    problems: dict[str, list[str]] = {}
    every: list[Story] = []
    for label, items in sets.items():
        key = "with" if label == "with context" else "without"
        lines = first = fallback = 0
        have_counts = True
        unfaithful = contra = outside = 0
        texts: list[str] = []
        new: set[str] = set()  # texts that are not copies of a training line
        copies = 0
        for st, ctx in items:
            every.append(st)
            md = st.metadata
            if "lines" in md:
                lines += md["lines"]
                first += md.get("accepted_first", 0)
                fallback += md.get("fallback_lines", 0)
            else:
                have_counts = False
            foreign = list(foreign_base)
            if ctx:
                foreign += [r.name for r in ctx["level"].regions] + [c.name for c in ctx["cast"].characters]
            miss = missing_facts(st)
            bad = contradictions(st, foreign)
            if miss or bad:
                unfaithful += 1
                problems.setdefault("unfaithful", []).append(f"{st.id} ({label}): " + "; ".join((miss + bad)[:3]))
            contra += bool(bad)
            if ctx:
                out = ids_outside(st, ctx)
                outside += len(out)
                if out:
                    problems.setdefault("ids", []).append(f"{st.id}: {', '.join(out)}")
            for line in all_lines(st):
                texts.append(line)
                if train_templates and _template(line, st) in train_templates:
                    copies += 1
                else:
                    new.add(line)
        n_lines = len(texts)
        distinct = len(new)
        if have_counts and lines:
            metrics[f"fallback_rate_{key}"] = round(fallback / lines, 4)
            metrics[f"first_sample_rate_{key}"] = round(first / lines, 4)
        metrics[f"unfaithful_stories_{key}"] = unfaithful
        metrics[f"contradicting_stories_{key}"] = contra
        if key == "with":
            metrics["ids_not_in_context"] = outside
        metrics[f"distinct_lines_{key}"] = round(distinct / max(1, n_lines), 4)
        metrics[f"copied_lines_{key}"] = round(copies / max(1, n_lines), 4)

    # throughput: batches of 16, the best of three, after a warm-up
    seeds = [derive(seed, "speed", i) for i in range(THROUGHPUT_BATCH)]
    engine.generate_batch("story", gen_id, seeds, params)
    best = best_cpu = float("inf")
    for r in range(3):
        seeds = [derive(seed, "speed", r, i) for i in range(THROUGHPUT_BATCH)]
        t0, c0 = time.perf_counter(), time.process_time()
        engine.generate_batch("story", gen_id, seeds, params)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    metrics["stories_per_second"] = round(THROUGHPUT_BATCH / best, 2)
    # the same per second of this process's CPU time: what one dedicated core gives on a busy machine
    metrics["stories_per_cpu_second"] = round(THROUGHPUT_BATCH / max(best_cpu, 1e-9), 2)

    rng = np.random.default_rng(derive(seed, "shown"))
    shown = [every[int(i)] for i in sorted(rng.choice(len(every), min(SHOWN, len(every)), replace=False))]
    if report is not None:
        _write_report(report, metrics, problems, shown, gen_id, params)
    return metrics


def _target_rows(metrics: dict) -> list[str]:
    rows = ["| measure | with context | without context | target | met |", "|---|---|---|---|---|"]
    for name, (cmp, target, what) in TARGETS.items():
        vals = [metrics.get(f"{name}_{k}", metrics.get(name)) for k in ("with", "without")]
        if name in ("ids_not_in_context", "stories_per_second"):
            vals = [metrics.get(name), "—" if name == "ids_not_in_context" else metrics.get(name)]
        present = [v for v in vals if isinstance(v, (int, float))]
        met = "n/a" if not present else ("yes" if all(_ok(v, cmp, target) for v in present) else "**no**")
        shown = [("n/a" if v is None else (f"{v:.2%}" if isinstance(v, float) and name.endswith("rate") or
                                           name == "distinct_lines" and isinstance(v, float) else str(v)))
                 for v in vals]
        tgt = f"{cmp} {target:.0%}" if name.endswith("rate") or name == "distinct_lines" else f"{cmp} {target}"
        rows.append(f"| {what} | {shown[0]} | {shown[1]} | {tgt} | {met} |")
    return rows


def _write_report(folder: Path, metrics: dict, problems: dict, shown: list[Story], gen_id: str, params: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    out = [f"# Story evaluation: `{gen_id}`", "",
           f"{metrics['count']} stories with context (a level and its cast) and {metrics['count']} without; "
           f"params {params or '(defaults)'}.", ""]
    out += _target_rows(metrics) + [""]
    out += ["| other figures | value |", "|---|---|"]
    for k, v in metrics.items():
        if k.startswith(("contradicting", "copied", "stories_per_cpu")):
            out.append(f"| {k} | {v} |")
    out.append("")
    for key, label in (("unfaithful", "Unfaithful stories"), ("ids", "Ids not in context")):
        if problems.get(key):
            out += [f"## {label} (first 20)", ""] + [f"- {p}" for p in problems[key][:20]] + [""]
    out += [f"## {len(shown)} random stories, in full", ""]
    for st in shown:
        out += [render(st), "---", ""]
    atomic_write(folder / "report.md", "\n".join(out).encode("utf-8"))
