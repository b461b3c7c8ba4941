"""Parts of the ``character-ml`` generator.

- :mod:`.data`: corpora parsing, the exact attribute allocation and sprite cleanup (numpy only);
- :mod:`.models`: the torch modules (name GRU, stats mixture, sprite VAE), their training and batched
  sampling. Imported only when a character is generated or a model trained: importing this package, or
  ``plugins.character_ml``, never imports torch.
- :mod:`.corpus`: the script that authored the shipped corpora (``python -m plugins.learned_characters.corpus``).
"""
