"""The game's shared character rules: attributes and their range, roles, naming styles, enemy roles and the
word lists of backstories. ``classic-character``, ``character-ml`` (and its corpus script and trainers) import
them from here, so a rule is stated once.

- ``ATTRS`` with ``ATTR_MIN..ATTR_MAX``: every character has these six integer attributes;
- ``ROLES``: role -> :class:`Role` (attribute weights of the classic templates, palette hues primary and
  secondary, body plan ``person`` or ``beast``); ``PERSON_ROLES`` are the ones an ``any`` role picks from;
- ``STYLES``: the naming cultures the shipped name corpora and ``classic-character`` know;
- ``ENEMY_ROLE``: a level's enemy ``type`` property -> role (others are beasts);
- ``TRAITS``, ``ORIGINS``, ``GOALS``, ``SKIN``, ``HAIR``: the backstory words and body colors.
"""
from __future__ import annotations

from typing import NamedTuple

ATTRS = ("strength", "dexterity", "constitution", "intelligence", "wisdom", "charisma")
ATTR_MIN, ATTR_MAX = 3, 18


class Role(NamedTuple):
    weights: tuple[int, ...]  # classic attribute template (relative weights of ATTRS)
    hues: tuple[tuple[int, int, int], tuple[int, int, int]]  # primary, secondary palette colors
    body: str  # "person" or "beast"


ROLES: dict[str, Role] = {
    "warrior": Role((5, 2, 4, 1, 1, 2), ((170, 40, 40), (120, 120, 130)), "person"),
    "mage": Role((1, 2, 1, 6, 4, 2), ((60, 60, 180), (220, 200, 80)), "person"),
    "rogue": Role((2, 6, 2, 2, 1, 3), ((50, 50, 50), (110, 70, 40)), "person"),
    "cleric": Role((2, 1, 3, 2, 6, 3), ((230, 230, 210), (210, 170, 40)), "person"),
    "ranger": Role((3, 5, 3, 2, 3, 1), ((50, 120, 50), (120, 90, 50)), "person"),
    "merchant": Role((1, 2, 2, 4, 3, 6), ((140, 60, 140), (230, 190, 90)), "person"),
    "villager": Role((3, 3, 3, 3, 3, 3), ((150, 110, 70), (90, 120, 160)), "person"),
    "beast": Role((6, 4, 5, 1, 2, 1), ((110, 80, 50), (160, 130, 90)), "beast"),
    "undead": Role((4, 2, 5, 2, 2, 1), ((200, 200, 180), (90, 100, 90)), "person"),
}
PERSON_ROLES = tuple(r for r, v in ROLES.items() if v.body == "person")
STYLES = ("elven", "dwarven", "orcish", "nordic", "desert")
ENEMY_ROLE = {"rat": "beast", "bat": "beast", "wolf": "beast", "spider": "beast", "slime": "beast",
              "skeleton": "undead", "goblin": "rogue", "cultist": "mage", "goomba": "beast", "koopa": "beast",
              "spiny": "beast", "beetle": "beast"}
TRAITS = ("brave", "greedy", "kind", "cunning", "loyal", "curious", "grim", "cheerful", "reckless", "patient",
          "proud", "superstitious", "honest", "secretive", "restless", "gentle")
ORIGINS = ("a fishing village", "the capital's slums", "a mountain hold", "a desert caravan", "a ruined abbey",
           "a border fort", "the deep woods", "a merchant house")
GOALS = ("to repay an old debt", "to find a lost sibling", "to earn a name", "to forget a war",
         "to master a forbidden art", "to protect their home", "to get rich", "to break a curse")
SKIN = ((240, 200, 160), (200, 150, 110), (150, 100, 70), (110, 75, 50), (120, 170, 90), (180, 180, 190))
HAIR = ((40, 30, 20), (120, 70, 30), (230, 200, 110), (200, 60, 30), (220, 220, 220), (30, 30, 60))
