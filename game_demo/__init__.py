"""A small pygame-ce game that generates its world with Conjure while you play (see issue: game_demo)."""
