"""Benchmark: start-up time of the `segstudio` command (target <= 0.3 s for --help and status).

Each command is run --runs times as a fresh process (what a user waits for after pressing
Enter: interpreter start, imports, the work, exit); the best, median and mean wall seconds are
printed, with a bare `python -c pass` as the floor no command can go under, and the machine's
load average. `status` reads a small demo store made for the run in a temporary folder (or
--db). Heavy libraries (pandas, numpy, torch, ...) are imported by the commands that use them,
when they run: the modules they load are listed.

    python bench/bench_cli.py
    python bench/bench_cli.py --runs 30 --db data/segstudio.duckdb
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 0.3
HEAVY = ("pandas", "numpy", "pyarrow", "duckdb", "torch", "sklearn", "numba", "umap",
         "streamlit", "sentence_transformers", "scipy")
_MODULES = """
import contextlib, io, sys
from core.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main({argv!r})
    except SystemExit:
        pass
print(" ".join(m for m in {heavy!r} if m in sys.modules))
"""


def segstudio() -> list[str]:
    exe = Path(sys.executable).with_name("segstudio")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "core.cli"]


def times(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        out.append(time.perf_counter() - t)
    return out


def heavy_modules(argv: list[str]) -> str:
    code = _MODULES.format(argv=argv, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    return out or "none"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=20, help="runs per command (default 20)")
    p.add_argument("--db", help="store for `status` (default: a 200-shopper demo made here)")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        db = args.db
        if db is None:
            db = str(Path(tmp) / "demo.duckdb")
            subprocess.run(segstudio() + ["demo", "--users", "200", "--db", db, "--quiet"],
                           cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        cases = [("python -c pass (floor)", [sys.executable, "-c", "pass"], None),
                 ("segstudio --help", segstudio() + ["--help"], ["--help"]),
                 ("segstudio status", segstudio() + ["status", "--db", db],
                  ["status", "--db", db])]
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"bench_cli: {args.runs} runs each, load average {load} (before)")
        print(f"  {'command':<24} {'best s':>7} {'median s':>9} {'mean s':>7}  target  "
              f"heavy modules loaded")
        ok = True
        for name, cmd, cli_argv in cases:
            t = times(cmd, args.runs)
            met = ""
            if cli_argv is not None:
                met = "met" if statistics.median(t) <= TARGET_S else "MISSED"
                ok &= met == "met"
            mods = heavy_modules(cli_argv) if cli_argv is not None else ""
            print(f"  {name:<24} {min(t):7.3f} {statistics.median(t):9.3f} "
                  f"{statistics.fmean(t):7.3f}  {met:<6}  {mods}")
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"  load average {load} (after); target: median <= {TARGET_S} s "
              f"{'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
