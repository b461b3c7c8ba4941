"""``grammar-story``: a seeded Tracery-like grammar writes a quest (title, giver, goal, place, reward,
beats) and a branching dialogue graph whose choices set flags.

With context it is grounded: places are the level's regions, characters come from the cast (the giver is a
non-hostile character, the foe a hostile one). Without context it invents places and names. Every id the
story mentions is listed in ``story.places``/``characters``/``items`` and, with context, exists there.
"""
from __future__ import annotations

import re

import numpy as np

from engine import Beat, Choice, DialogueNode, Generator, Param, Quest, Story, hookimpl
from engine.textfilter import default_filter

from .story_plan import QUEST_KINDS, TONES, plan
from .words import pick

GRAMMAR = {
    "title.fetch": ["The #adj# #Item#", "#Item# of #Place#", "What Lies in #Place#"],
    "title.slay": ["The Hunt for #Foe#", "#Foe# Must Fall", "Blood in #Place#"],
    "title.rescue": ["Lost in #Place#", "The Captive of #Place#", "Bring #Captive# Home"],
    "title.deliver": ["A Parcel for #Recipient#", "The #adj# Errand", "Word to #Place2#"],
    "title.explore": ["Beyond #Place#", "The Map's Edge", "Secrets of #Place2#"],
    "adj": ["Lost", "Stolen", "Hidden", "Cursed", "Forgotten", "Last"],
    "greet.earnest": ["Thank the stars you came, traveller.", "You have the look of someone who can help.",
                      "Please, I need a brave soul."],
    "greet.grim": ["Another fool looking for coin. Fine.", "Sit. This will not be pleasant.",
                   "Few who hear this come back."],
    "greet.playful": ["Well, well! A hero, or near enough.", "Ah, you'll do nicely!",
                      "Lucky me, a volunteer!"],
    "ask.fetch": ["My #item# was taken to #place#. Bring it back to me.",
                  "I need the #item# that lies in #place#."],
    "ask.slay": ["#Foe# haunts #place#. End it.", "#Foe# has killed too many. Find it in #place#."],
    "ask.rescue": ["#Captive# went into #place# and never returned.", "They took #Captive# to #place#."],
    "ask.deliver": ["Take this #item# to #Recipient# in #place2#.",
                    "#Recipient# waits in #place2# for this #item#."],
    "ask.explore": ["Nobody has mapped #place2# past #place#. Go and see.",
                    "Something stirs beyond #place#. Find out what."],
    "reward": ["#amount# gold", "a #adj2# blade", "my family's #adj2# ring", "a favour owed", "#amount# gold and a horse"],
    "adj2": ["silver", "old", "fine", "enchanted", "heavy"],
    "amount": ["50", "100", "120", "200", "300"],
    "accept": ["I'll do it.", "Consider it done.", "Fine, I'm in."],
    "haggle": ["What's in it for me?", "And the pay?", "Why should I?"],
    "decline": ["Not today.", "Find someone else.", "I have other business."],
    "lore": ["Tell me about #place#.", "What do you know of #place#?"],
    "lore_answer": ["#place.cap# was #lorefact#.", "They say #place# #lorefact2#."],
    "lorefact": ["a place of worship once", "sealed after the plague", "built by a mad king",
                 "flooded every spring"],
    "lorefact2": ["hums at night", "eats lanterns", "moves when no one looks", "remembers its dead"],
    "thanks.earnest": ["Bless you. Go carefully.", "I knew you would help."],
    "thanks.grim": ["Don't die. I'd have to find another.", "Good. Go."],
    "thanks.playful": ["Splendid! Try not to get eaten.", "Wonderful! Off you pop."],
    "offer": ["I can give you #reward#.", "#reward.cap#, and my thanks."],
    "bye.earnest": ["Then may the roads be kind to you.", "I understand. Farewell."],
    "bye.grim": ["Then get out of my sight.", "Coward. Go."],
    "bye.playful": ["Your loss! Bye now.", "Suit yourself!"],
}
SYMBOL = re.compile(r"#([A-Za-z0-9_.]+)#")


class Grammar:
    """A tiny Tracery: ``#symbol#`` expands a rule (or a bound variable), ``.cap`` capitalises."""

    def __init__(self, rules: dict[str, list[str]], rng: np.random.Generator, bound: dict[str, str]):
        self.rules, self.rng, self.bound = rules, rng, bound

    def expand(self, text: str, depth: int = 0) -> str:
        if depth > 12:
            return text

        def sub(m: re.Match) -> str:
            key, _, mod = m.group(1).partition(".")
            if mod and mod not in ("cap",):  # rules like greet.grim are keys, not modifiers
                key, mod = m.group(1), ""
            if key in self.bound:
                val = self.bound[key]
            elif key in self.rules:
                val = self.expand(pick(self.rng, self.rules[key]), depth + 1)
            else:
                return m.group(0)
            return val[:1].upper() + val[1:] if mod == "cap" else val

        return SYMBOL.sub(sub, text)


class GrammarStory(Generator):
    id = "grammar-story"
    kind = "story"
    version = "2"  # 2: a level without regions grounds places in its landmarks; a cast never gets an invented giver
    description = "Tracery-like grammar quests and branching dialogue, grounded in level and cast context"
    params = (
        Param("quest", "choice", "any", choices=("any", *QUEST_KINDS), help="quest type"),
        Param("tone", "choice", "any", choices=("any", *TONES), help="voice of the dialogue"),
    )

    def generate(self, request):
        p = request.params
        rng = request.rng()
        pl = plan(request, rng, p["quest"], p["tone"])
        kind, tone, a, b, item, giver = pl.kind, pl.tone, pl.a, pl.b, pl.item, pl.giver
        foe, other = pl.foe, pl.other
        bound = {"place": a["name"], "Place": a["name"], "place2": b["name"], "Place2": b["name"],
                 "item": item["name"], "Item": _title(item["name"]), "Foe": (foe or {}).get("name", "the beast"),
                 "Captive": (other or {}).get("name", "someone"), "Recipient": (other or {}).get("name", "someone")}
        g = Grammar(GRAMMAR, rng, bound)
        filt = default_filter()
        filtered = 0

        def say(rule: str) -> str:
            nonlocal filtered
            for _ in range(10):
                text = g.expand(f"#{rule}#")
                if filt.text_ok(text):
                    return text
                filtered += 1
            return "..."

        title = say(f"title.{kind}")
        title = title[:1].upper() + title[1:]
        ask = say(f"ask.{kind}")
        reward = say("reward")
        bound["reward"] = reward
        G = giver["id"]
        beats = pl.beats(pl.default_beat_texts(reward))
        nodes = [
            DialogueNode("start", G, [say(f"greet.{tone}"), ask],
                         [Choice(say("accept"), "accept", ["quest_accepted"]),
                          Choice(say("haggle"), "haggle", ["asked_reward"]),
                          Choice(say("lore"), "lore", ["asked_lore"]),
                          Choice(say("decline"), "decline", ["quest_declined"])]),
            DialogueNode("lore", G, [say("lore_answer")],
                         [Choice(say("accept"), "accept", ["quest_accepted"]),
                          Choice(say("decline"), "decline", ["quest_declined"])]),
            DialogueNode("haggle", G, [say("offer")],
                         [Choice(say("accept"), "accept", ["quest_accepted", "reward_agreed"]),
                          Choice(say("decline"), "decline", ["quest_declined"])]),
            DialogueNode("accept", G, [say(f"thanks.{tone}")]),
            DialogueNode("decline", G, [say(f"bye.{tone}")]),
        ]
        places, chars, used_items = pl.refs()
        story = Story(id=f"story-{request.derive('id') % 10**8:08d}", title=title,
                      quest=Quest(kind, G, ask, beats, reward), start="start", nodes=nodes,
                      places=places, characters=chars, items=used_items,
                      metadata={"tone": tone, "filtered_lines": filtered, "requested_quest": pl.requested,
                                "grounded": pl.grounded})
        return story


def _title(s: str) -> str:
    return " ".join(w[:1].upper() + w[1:] if w not in ("of", "the") or i == 0 else w
                    for i, w in enumerate(s.split()))


@hookimpl
def register_story_generators(register):
    register(GrammarStory())
