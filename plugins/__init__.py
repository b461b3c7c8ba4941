"""Conjure's built-in plugins. Each is an ordinary module registered exactly like a third-party plugin."""
