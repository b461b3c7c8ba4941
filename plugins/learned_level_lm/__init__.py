"""``level-lm``: a tile transformer over strips of a level (columns for side view, rows of a room for top
down) with a KV cache, control tokens and pattern-constrained decoding.

Imported by :mod:`plugins.level_lm` at engine start-up, so this package's ``__init__`` and the numpy-only
modules (:mod:`.strips`, :mod:`.patterns`, :mod:`.controls`, :mod:`.reach`) stay light; the torch modules
(:mod:`.model`, :mod:`.sampler`, :mod:`.train`) are imported on first use.
"""
