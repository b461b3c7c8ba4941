"""Word lists shared by the classic generators (place names, enemy types, items)."""
from __future__ import annotations

import numpy as np

ROOM_ADJ = ("Flooded", "Silent", "Crumbling", "Gilded", "Forgotten", "Ashen", "Hollow", "Sunken", "Frozen",
            "Moonlit", "Rusted", "Whispering", "Broken", "Verdant", "Shadowed", "Echoing")
ROOM_NOUN = ("Crypt", "Hall", "Armory", "Chapel", "Cellar", "Library", "Vault", "Gallery", "Barracks",
             "Shrine", "Kitchen", "Cistern", "Forge", "Ossuary", "Study", "Throne Room")
BIOME_NOUN = {
    "deep_water": ("Deep", "Abyss", "Trench"), "water": ("Sea", "Bay", "Lake", "Sound"),
    "sand": ("Dunes", "Strand", "Shore", "Sands"), "grass": ("Meadows", "Fields", "Downs", "Plains"),
    "forest": ("Wood", "Forest", "Thicket", "Weald"), "hills": ("Hills", "Rise", "Knolls", "Heights"),
    "mountain": ("Peaks", "Crags", "Spine", "Teeth"), "snow": ("Glacier", "Snowfields", "White Waste", "Frost"),
}
BIOME_ADJ = ("Whispering", "Amber", "Old", "Lonely", "Bright", "Grey", "Restless", "Northern", "Sleeping",
             "Red", "Silver", "Wild", "Far", "Quiet", "Broken", "Golden")
ENEMY_TYPES = ("rat", "skeleton", "slime", "bat", "goblin", "spider", "cultist", "wolf")
TREASURES = ("gold", "gem", "potion", "scroll", "relic")
ITEMS = ("amulet", "lantern", "map fragment", "silver key", "sealed letter", "healing herb", "old sword",
         "crystal shard", "ledger", "idol")


def pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def room_name(rng: np.random.Generator, used: set[str]) -> str:
    for _ in range(20):
        name = f"the {pick(rng, ROOM_ADJ)} {pick(rng, ROOM_NOUN)}"
        if name not in used:
            break
    used.add(name)
    return name


def region_name(rng: np.random.Generator, biome: str, used: set[str]) -> str:
    nouns = BIOME_NOUN.get(biome, ("Lands",))
    for _ in range(20):
        name = f"the {pick(rng, BIOME_ADJ)} {pick(rng, nouns)}"
        if name not in used:
            break
    used.add(name)
    return name
