"""`segstudio serve`: the dashboard (Streamlit) on the store."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HELP = "open the dashboard in your browser (optionally building a demo shop first)"
DESCRIPTION = """\
Serve the Segment Studio dashboard on http://localhost:PORT. It shows the latest complete build
of the store and picks up new builds by itself; it never trains anything.

With --demo, an empty store is first filled with a generated demo shop (2,000 shoppers) and
built, with progress shown, so there is something to explore straight away.

Sign-in: put a password (or an OpenID Connect provider) in .streamlit/secrets.toml under [auth]
and nobody sees any data without signing in:
  [auth]
  password = "choose-a-good-one"

Examples:
  segstudio serve                       the store in data/segstudio.duckdb (or --db / SEGSTUDIO_DB)
  segstudio serve --demo                build a demo shop first if the store is empty
  segstudio serve --port 8600 --host 0.0.0.0   reachable from other machines
"""

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "dashboard" / "app.py"


def add_arguments(parser) -> None:
    parser.add_argument("--port", type=int, default=8501, help="port to listen on (default 8501)")
    parser.add_argument("--host", default="localhost",
                        help="address to listen on (default localhost; 0.0.0.0 for every interface)")
    parser.add_argument("--demo", action="store_true",
                        help="if the store has no data, generate the demo shop and build it first")
    parser.add_argument("--demo-users", type=int, default=2000,
                        help="shoppers in the demo shop made by --demo (default 2000)")
    parser.add_argument("--currency", default=None,
                        help="currency symbol for money (default £, or currency in segstudio.toml)")
    parser.add_argument("--dry-run", action="store_true", help=argparse_suppress())


def argparse_suppress():
    import argparse

    return argparse.SUPPRESS


def _has_data(store) -> bool:
    if not store.exists():
        return False
    con = store.read()
    try:
        return con.execute("SELECT count(*) FROM events").fetchone()[0] > 0
    finally:
        con.close()


def _has_build(store) -> bool:
    from core.store import latest_run

    con = store.read()
    try:
        return latest_run(con) is not None
    finally:
        con.close()


def prepare_demo(store, *, users: int, seed: int, device: str, text_model: str, progress) -> dict:
    """Generate and build the demo shop when the store has no data; build when it has no build."""
    from core.pipeline import BuildParams, build

    done = {"generated": False, "built": False}
    if not _has_data(store):
        from core.demo import generate_demo

        progress.message(f"Creating the demo shop ({users:,} shoppers) in {store.path} ...")
        generate_demo(store, users=users, seed=seed, progress=progress)
        done["generated"] = True
    if not _has_build(store):
        progress.message("Building segments, map, rules and recommendations (a few minutes) ...")
        build(store, BuildParams(seed=seed, device=device, text_model=text_model), progress=progress)
        done["built"] = True
    return done


def streamlit_command(port: int, host: str) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(APP),
            "--server.port", str(port), "--server.address", host,
            "--server.headless", "true", "--browser.gatherUsageStats", "false"]


def run(args, settings) -> int:
    from core.cli import UserError
    from core.progress import TqdmProgress

    store = settings.store()
    if args.demo:
        prepare_demo(store, users=args.demo_users, seed=settings.seed, device=settings.device,
                     text_model=settings.text_model,
                     progress=TqdmProgress(enabled=not (args.quiet or args.json)))
    elif not store.exists():
        print(f"note: no store at {store.path} yet; the dashboard will say how to create one "
              "(or run `segstudio serve --demo`).", file=sys.stderr)
    env = dict(os.environ)
    env["SEGSTUDIO_DB"] = str(store.path)
    if settings.config_file:
        env["SEGSTUDIO_CONFIG"] = str(Path(settings.config_file).resolve())
    if args.currency:
        env["SEGSTUDIO_CURRENCY"] = args.currency
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    cmd = streamlit_command(args.port, args.host)
    if args.dry_run:
        print(" ".join(cmd))
        return 0
    if not args.quiet:
        shown = "localhost" if args.host in ("localhost", "127.0.0.1", "0.0.0.0") else args.host
        print(f"Segment Studio: http://{shown}:{args.port}  (store {store.path}; Ctrl+C to stop)",
              file=sys.stderr)
    # Become Streamlit (exec): Ctrl+C and signals reach it directly, no orphaned server.
    # It runs from the project folder so .streamlit/config.toml (theme, server settings) applies.
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.chdir(ROOT)
        os.execve(sys.executable, cmd, env)
    except OSError as e:  # pragma: no cover
        raise UserError(f"Could not start Streamlit ({e}). Reinstall with `pip install -e .`.") from e
    return 0
