"""Built-in formats: native msgpack and JSON (read and write), and PNG previews."""
from __future__ import annotations

from pathlib import Path

from engine import Exporter, hookimpl
from engine.generator import int_option
from engine.content import Content, KINDS
from engine.serialize import dumps, loads, read_bytes


class NativeFormat(Exporter):
    kinds = KINDS
    options = ()

    def __init__(self, fmt: str, extensions: tuple[str, ...], description: str):
        self.id = fmt
        self.extensions = extensions
        self.description = description

    def dumps(self, content: Content, options: dict) -> bytes:
        return dumps(content, self.id)

    def load(self, path: Path) -> Content:
        return loads(read_bytes(path), self.id, str(path))


class PngPreview(Exporter):
    id = "png"
    kinds = KINDS
    extensions = (".png",)
    options = ("tile_size", "scale", "atlas", "padding", "sheet_scale", "theme")
    description = "PNG preview (options: tile_size for levels, scale for sprites, theme=NAME for tile art)"

    def dumps(self, content: Content, options: dict) -> bytes:
        from .preview import png_bytes

        if options.get("theme") is not None:  # tile art (plugins/themes.py; `conjure list themes`)
            from .themes import png_bytes as themed

            return themed(content, options["theme"], int_option(options, "tile_size", 16, 1, 128, "png"))

        return png_bytes(content, tile_size=int_option(options, "tile_size", 8, 1, 64, "png"),
                         scale=int_option(options, "scale", 4, 1, 64, "png"))

    def export(self, content: Content, path: Path, options: dict) -> list[Path]:
        """The preview; for characters also the sprite sheet + TexturePacker atlas beside it
        (``NAME.sheet.png`` + ``NAME.atlas.json``; ``-O atlas=0`` turns that off)."""
        if content.KIND == "character" and options.get("atlas", 1) and "sheet_scale" in options:
            int_option(options, "sheet_scale", 1, 1, 16, "png")  # named as the user wrote it, checked first
        written = super().export(content, path, options)
        if content.KIND == "character" and options.get("atlas", 1):
            from .atlas import write_beside

            written += write_beside(content, path, options)
        return written


@hookimpl
def register_exporters(register):
    register(NativeFormat("msgpack", (".msgpack", ".mpk"), "native binary format (tiles as raw bytes)"))
    register(NativeFormat("json", (".json",), "native JSON (tiles as rows of ints)"))
    register(PngPreview())
