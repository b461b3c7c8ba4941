"""Shared pieces of the learned level generators (``dungeon-vae``, ``platformer-gan``).

This package is imported by the plugin modules at engine start-up, so it must stay light: numpy only.
The torch modules live in :mod:`plugins.learned_levels.nets` and are imported on first use.
"""
