"""The `segstudio` command line.

Each command lives in its own module ``core/cli/<name>.py`` exposing:

    HELP = "one line shown in `segstudio --help`"
    def add_arguments(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace, settings: core.config.Settings) -> int

Common flags (--db, --config, --json, --quiet) are added here to every command.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

from core import __version__
from core.config import load_settings

COMMANDS = [
    "demo",
    "ingest",
    "build",
    "serve",
    "status",
    "export",
    "rules",
    "recommend",
    "evaluate",
    "predictions",
    "migration",
    "audience",
]

DESCRIPTION = """\
Segment Studio: understand an online shop's shoppers.

Typical session:
  segstudio demo                      create a demo shop to explore (or ingest your own data)
  segstudio ingest orders.csv --format online-retail
  segstudio build                     profiles, segments, maps, rules, recommendations
  segstudio serve                     open the dashboard on http://localhost:8501
  segstudio status                    what is in the store and how it was loaded
  segstudio export --segment 3 --out segment3.csv

Every command accepts --db PATH (or SEGSTUDIO_DB, or db = "..." in segstudio.toml).
Run `segstudio COMMAND --help` for details.
"""


class UserError(Exception):
    """An error whose message tells the user what went wrong and how to fix it."""


def require_build(con, where, then: str = "") -> dict:
    """The latest complete build, or a UserError saying to run `segstudio build` first."""
    from core.store import latest_run

    run = latest_run(con)
    if run is None:
        raise UserError(f"No complete build in {where}: run `segstudio build` first{then}.")
    return run


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("common options")
    g.add_argument("--db", help="the store (DuckDB file). Default data/segstudio.duckdb, "
                   "or $SEGSTUDIO_DB, or db in segstudio.toml")
    g.add_argument("--config", help="TOML settings file (default ./segstudio.toml if present)")
    g.add_argument("--json", action="store_true", help="print the result as JSON for scripts")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    g.add_argument("--debug", action="store_true",
                   help="show the full traceback of an error (or set SEGSTUDIO_DEBUG=1)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segstudio", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"segstudio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        mod = importlib.import_module(f"core.cli.{name}")
        p = sub.add_parser(
            name, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.add_arguments(p)
        _common(p)
        p.set_defaults(_module=mod)
    return parser


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


def main(argv: list[str] | None = None) -> int:
    """Run one command. Every expected failure (bad input, paths, permissions, a full disk, a
    file that is not a store...) ends as one sentence with the fix and exit code 2; a bug ends
    as one line and exit code 1. Tracebacks only with --debug (or SEGSTUDIO_DEBUG=1)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    debug = getattr(args, "debug", False) or os.environ.get("SEGSTUDIO_DEBUG", "") not in ("", "0")
    try:
        settings = load_settings(args.config, db=args.db)
        return int(args._module.run(args, settings) or 0)
    except KeyboardInterrupt:
        print("interrupted: nothing was changed (the store keeps its last complete state)",
              file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the one place every failure is turned into a sentence
        if debug:
            raise
        from core.cli.errors import EXIT_BUG, EXIT_USER, bug_line, explain

        msg = explain(e)
        code = EXIT_USER if msg is not None else EXIT_BUG
        msg = msg if msg is not None else bug_line(e)
        if getattr(args, "json", False):
            print_json({"error": msg})
        print(f"error: {msg}", file=sys.stderr)
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
