"""Shared pieces of the learned level generators (``dungeon-vae``, ``platformer-gan``; ``level-lm`` uses them
too): :mod:`.corpus` (reading a user's corpus into one tileset, with skip reasons), :mod:`.rules` (playability
rules fitted on the corpus), :mod:`.model` (what a weights file carries besides its network),
:mod:`.dungeon_post` (placement and repair for top-down levels).

This package is imported by the plugin modules at engine start-up, so it must stay light: numpy only.
The torch modules live in :mod:`plugins.learned_levels.nets` and are imported on first use.
"""
