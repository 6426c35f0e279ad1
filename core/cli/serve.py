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

Sign-in: put a password (or an OpenID Connect provider) under [auth] in a secrets file and
nobody sees any data, downloads included, without signing in:
  [auth]
  password = "choose-a-good-one"
The secrets file is --secrets FILE, else .streamlit/secrets.toml in the folder you run serve
from, else the one in the Segment Studio folder, else ~/.streamlit/secrets.toml. serve prints
which file and which sign-in method it uses. A secrets file with a broken [auth] (empty,
misspelt, an empty password, not valid TOML...) stops serve with what is wrong; wrong passwords
are slowed down (growing waits per browser and per address).

Examples:
  segstudio serve                       the store in data/segstudio.duckdb (or --db / SEGSTUDIO_DB)
  segstudio serve --demo                build a demo shop first if the store is empty
  segstudio serve --port 8600 --host 0.0.0.0   reachable from other machines
  segstudio serve --secrets /etc/segstudio/secrets.toml
"""

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "dashboard" / "server.py"  # the app behind the sign-in gate (dashboard/gate.py)


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
    parser.add_argument("--secrets", metavar="FILE",
                        help="secrets file with the [auth] sign-in settings (default: "
                             "./.streamlit/secrets.toml, then the install folder's, then "
                             "~/.streamlit/secrets.toml)")
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


def secrets_file(given: str | None) -> Path | None:
    """The secrets file serve uses: --secrets, $SEGSTUDIO_SECRETS, else the first that exists of
    core.access.candidate_files (the working folder's, the install folder's, the user's)."""
    from core.access import candidate_files
    from core.cli import UserError

    explicit = given or os.environ.get("SEGSTUDIO_SECRETS") or None
    if explicit:
        p = Path(explicit).expanduser().resolve()
        if not p.is_file():
            raise UserError(f"--secrets {explicit}: no such file. Check the path (it is relative "
                            f"to {Path.cwd()}).")
        return p
    return next((p for p in candidate_files(Path.cwd(), ROOT) if p.is_file()), None)


def sign_in(given: str | None):
    """(secrets file or None, its AuthConfig); a broken configuration stops serve (exit 2)."""
    from core.access import AuthConfig, load_file
    from core.cli import UserError

    path = secrets_file(given)
    if path is None:
        return None, AuthConfig("none", "no secrets file found")
    cfg = load_file(path)
    if cfg.method == "broken":
        raise UserError(f"Sign-in is misconfigured, so the dashboard would not serve any data: "
                        f"{cfg.error}")
    return path, cfg


def streamlit_command(port: int, host: str, secrets: Path | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP),
           "--server.port", str(port), "--server.address", host,
           "--server.headless", "true", "--browser.gatherUsageStats", "false",
           # the tables' own "Download as CSV" would write formulas raw: our exports neutralise them
           "--client.disableDataExport", "true"]
    if secrets is not None:  # Streamlit's st.login (single sign-on) reads the same file
        cmd += ["--secrets.files", str(secrets)]
    return cmd


def run(args, settings) -> int:
    from core.cli import UserError
    from core.progress import TqdmProgress

    store = settings.store()
    secrets, auth = sign_in(args.secrets)  # before anything long: a broken [auth] stops here
    if args.demo:
        prepare_demo(store, users=args.demo_users, seed=settings.seed, device=settings.device,
                     text_model=settings.text_model,
                     progress=TqdmProgress(enabled=not (args.quiet or args.json)))
    elif store.exists():
        store.read().close()  # a --db that is not a store is refused here, not in the browser
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
    env["SEGSTUDIO_SECRETS"] = str(secrets or "")  # the gate and the app read exactly this file
    cmd = streamlit_command(args.port, args.host, secrets)
    print(f"Sign-in: {auth.describe}", file=sys.stderr, flush=True)
    for w in auth.warnings:
        print(f"warning: {w}", file=sys.stderr, flush=True)
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
