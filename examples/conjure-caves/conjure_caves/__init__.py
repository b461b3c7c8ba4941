"""conjure-caves: cellular-automata caves for Conjure, registered through the ``conjure`` entry point."""
from __future__ import annotations

from engine import hookimpl

from .ascii import AsciiExporter
from .caves import Caves

__all__ = ["AsciiExporter", "Caves"]


@hookimpl
def register_level_generators(register):
    register(Caves())


@hookimpl
def register_exporters(register):
    register(AsciiExporter())
