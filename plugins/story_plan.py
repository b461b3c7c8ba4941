"""The story planner shared by ``grammar-story`` and ``story-lm``: it grounds a quest in the context and
gives it structure; the generators give it words.

``plan(request, rng, quests, tones)`` picks the quest kind and tone, the places (the level's regions, or
invented ones without a level), the giver (a friendly cast member), another character (captive or
recipient) and a foe (a hostile one: ``metadata["hostile"]``, or a beast/undead role), and the item. It
never invents a character id when a cast is given: a quest that needs someone the cast lacks falls back to
another kind. ``Plan.beats(texts)`` lays out the beats (talk, goto, fetch/defeat/escort/deliver/explore,
return) with their place, character and item ids; ``Plan.bound()`` maps placeholders (``{place}``,
``{giver}``, ``{item}``, ``{foe}``…) to grounded names.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from engine import Beat
from engine.errors import InputError

from .classic_character import make_name
from .words import ITEMS, ROOM_ADJ, ROOM_NOUN, pick

HOSTILE = {"beast", "undead"}
QUEST_KINDS = ("fetch", "slay", "rescue", "deliver", "explore")
TONES = ("earnest", "grim", "playful")


@dataclass
class Plan:
    kind: str
    requested: str
    tone: str
    a: dict            # the main place
    b: dict            # a second place (may equal a when the level has one region)
    giver: dict
    other: dict | None  # captive (rescue) or recipient (deliver)
    foe: dict | None
    item: dict
    chars: list[dict]
    grounded: bool
    all_places: list[dict] = field(default_factory=list)  # every place the story could have used
    all_chars: list[dict] = field(default_factory=list)   # every character of the cast (or invented)

    def bound(self, reward: str = "") -> dict[str, str]:
        """Placeholder name -> grounded text."""
        return {"place": self.a["name"], "place2": self.b["name"], "giver": self.giver["name"],
                "item": self.item["name"], "foe": (self.foe or {}).get("name", ""),
                "other": (self.other or {}).get("name", ""), "reward": reward}

    def beat_specs(self) -> list[tuple[str, str | None, str | None, str | None]]:
        """(beat kind, place id, character id, item id) in order."""
        G, A, B, I = self.giver["id"], self.a["id"], self.b["id"], self.item["id"]
        out: list[tuple[str, str | None, str | None, str | None]] = [("talk", None, G, None)]
        k = self.kind
        if k == "fetch":
            out += [("goto", A, None, None), ("fetch", A, None, I)]
        elif k == "slay":
            out += [("goto", A, None, None), ("defeat", A, self.foe["id"], None)]
        elif k == "rescue":
            out += [("goto", A, None, None)]
            if self.foe:
                out += [("defeat", A, self.foe["id"], None)]
            out += [("escort", None, self.other["id"], None)]
        elif k == "deliver":
            out += [("goto", B, None, I), ("deliver", None, self.other["id"], I)]
        else:
            out += [("goto", A, None, None), ("explore", B, None, None)]
        out.append(("return", None, G, None))
        return out

    def beats(self, texts: list[str]) -> list[Beat]:
        """Beats from :meth:`beat_specs` with one text each."""
        return [Beat(f"b{i + 1}", kind, text, place=p, character=c, item=it)
                for i, ((kind, p, c, it), text) in enumerate(zip(self.beat_specs(), texts))]

    def default_beat_texts(self, reward: str) -> list[str]:
        """The classic fixed beat texts (``grammar-story`` uses these)."""
        a, b, item = self.a["name"], self.b["name"], self.item["name"]
        gn = self.giver["name"]
        out = []
        for kind, _, _, _ in self.beat_specs():
            if kind == "talk":
                out.append(f"Hear out {gn}.")
            elif kind == "return":
                out.append(f"Return to {gn} for {reward}.")
            elif self.kind == "fetch":
                out.append(f"Travel to {a}." if kind == "goto" else f"Find the {item}.")
            elif self.kind == "slay":
                out.append(f"Track the foe to {a}." if kind == "goto" else f"Defeat {self.foe['name']}.")
            elif self.kind == "rescue":
                out.append({"goto": f"Search {a}.", "defeat": f"Defeat {(self.foe or {}).get('name')}.",
                            "escort": f"Bring {(self.other or {}).get('name')} home."}[kind])
            elif self.kind == "deliver":
                out.append(f"Carry the {item} to {b}." if kind == "goto" else f"Hand it to {self.other['name']}.")
            else:
                out.append(f"Pass through {a}." if kind == "goto" else f"Explore {b}.")
        return out

    def refs(self) -> tuple[list[dict], list[dict], list[dict]]:
        """``story.places``, ``story.characters``, ``story.items`` for these beats."""
        uses_item = any(it for _, _, _, it in self.beat_specs())
        return unique([self.a, self.b]), unique(self.chars), ([dict(self.item)] if uses_item else [])


def plan(request, rng, quest: str = "any", tone: str = "any") -> Plan:
    """Ground a quest in ``request.context``; ``rng`` is consumed in a fixed order (seed-stable)."""
    kind = requested = quest if quest != "any" else pick(rng, QUEST_KINDS)
    tone = tone if tone != "any" else pick(rng, TONES)
    places, friends, foes = context_refs(request, rng)
    a, b = (places[i] for i in rng.choice(len(places), 2, replace=len(places) < 2))
    giver = friends[int(rng.integers(len(friends)))]
    others = [f for f in friends if f["id"] != giver["id"]]
    other = others[int(rng.integers(len(others)))] if others else None
    foes = [f for f in foes if f["id"] != giver["id"]]  # (a cast of only foes: one of them gives the quest)
    foe = foes[int(rng.integers(len(foes)))] if foes else None
    item = {"id": "item-1", "name": pick(rng, ITEMS)}
    chars = [giver]
    grounded_cast = request.context.get("cast") is not None
    if other is None and kind in ("rescue", "deliver"):
        if grounded_cast:  # the cast has nobody to rescue or deliver to: never invent ids in context
            kind = "fetch" if kind == "deliver" else "slay" if foes else "fetch"
        else:
            other = {"id": "char-extra", "name": make_name(rng, "nordic"), "role": "villager"}
    if kind == "slay" and foe is None and grounded_cast:
        kind = "fetch"
    if kind in ("rescue", "deliver"):
        chars.append(other)
    if kind == "slay" or (kind == "rescue" and foe):
        if foe is None:
            foe = {"id": "char-foe", "name": f"the {pick(rng, ('Ash', 'Bone', 'Grey', 'Rot'))} "
                                           f"{pick(rng, ('Wyrm', 'Hound', 'Witch', 'Knight'))}", "role": "beast"}
        chars.append(foe)
    if kind not in ("slay", "rescue"):
        foe_used = None
    else:
        foe_used = foe
    grounded = bool(request.context.get("level") or request.context.get("cast"))
    everyone = [*friends, *foes] + [c for c in (other, foe) if c is not None]
    return Plan(kind, requested, tone, a, b, giver, other if kind in ("rescue", "deliver") else None,
                foe_used, item, chars, grounded, list(places), everyone)


#: Entity kinds that can stand for a place when a level has no regions.
LANDMARK_NAMES = {"spawn": "the entrance", "exit": "the way out", "goal": "the goal", "town": "the town",
                  "treasure": "the hidden cache", "key": "the key's resting place"}


def context_refs(request, rng):
    """(places, friends, foes) as ``{"id", "name"[, "role"]}`` refs from the context, or invented."""
    level = request.context.get("level")
    cast = request.context.get("cast")
    if level is not None and level.regions:
        places = [{"id": r.id, "name": r.name} for r in level.regions]
    elif level is not None:  # no named regions (e.g. caves): its landmarks are the places, never invented ids
        marks = [e for e in level.entities if e.kind in LANDMARK_NAMES]
        count: dict[str, int] = {}
        places = []
        for e in marks:
            count[e.kind] = count.get(e.kind, 0) + 1
            several = sum(1 for m in marks if m.kind == e.kind) > 1
            name = LANDMARK_NAMES[e.kind] + (f" {count[e.kind]}" if several else "")
            places.append({"id": e.id, "name": name})
        if not places:
            raise InputError("story context: the level has no regions and no landmarks (spawn, exit, town…) "
                             "for a story to take place in")
    else:
        used: set[str] = set()
        places = []
        for i in range(3):
            while True:
                name = f"the {pick(rng, ROOM_ADJ)} {pick(rng, ROOM_NOUN)}"
                if name not in used:
                    used.add(name)
                    break
            places.append({"id": f"place-{i + 1}", "name": name})
    friends, foes, heroes = [], [], []
    if cast is not None:
        for c in cast.characters:
            ref = {"id": c.id, "name": c.name, "role": c.role}
            if c.metadata.get("entity") == "spawn":  # the player's hero gives quests only to itself
                heroes.append(ref)
            elif c.metadata.get("hostile", c.role in HOSTILE):
                foes.append(ref)
            else:
                friends.append(ref)
        if not cast.characters:
            raise InputError("story context: the cast is empty")
        friends = friends or heroes or foes  # a cast was given: never invent a giver outside it
    if not friends:
        friends = [{"id": "char-giver", "name": make_name(rng, pick(rng, ("elven", "dwarven", "nordic",
                                                                            "desert"))), "role": "villager"}]
    return places, friends, foes


def unique(refs):
    seen, out = set(), []
    for r in refs:
        if r["id"] not in seen:
            seen.add(r["id"])
            out.append({"id": r["id"], "name": r["name"]})
    return out
