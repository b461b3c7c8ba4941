"""``python -m engine.serve [--host H] [--port P] [--pack PACK ...]``: the same as ``conjure serve``."""
from __future__ import annotations

import argparse
import sys

from ..errors import ConjureError
from . import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="conjure serve", description="Serve generators, packs and the playground "
                                 "over HTTP.")
    add_arguments(ap)
    args = ap.parse_args(argv)
    try:
        return run(args)
    except ConjureError as e:
        print(f"conjure: error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:  # e.g. the port is taken
        print(f"conjure: error: cannot serve on {args.host}:{args.port} ({e.strerror or e})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
