"""Every figure of issue 14 ("Fast at every size") in one run: CLI start, the rule miner against
pyfim, a segment save while a build holds the store, the Online Retail build per stage, and
(optionally) the million-shopper build per stage with its peak memory. Each part is the bench
script that measures it, run in its own process (so no part's imports, caches or memory reach
another's), its output shown in full; a summary of the targets follows.

    python bench/bench_scale.py                                # about 5 minutes
    python bench/bench_scale.py --million-users 1000000        # + generate and build 1 M shoppers
    python bench/bench_scale.py --million-store /tmp/big.duckdb   # + rebuild an existing store

The million-shopper build takes about half an hour on 2 cores and needs ~12 GB of memory and
~10 GB of disk; the store it generates is deleted afterwards unless ``--keep`` is given.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (part, line pattern) -> the summary's lines: each part's own verdicts, as it prints them
SUMMARY = [
    ("CLI start", r"segstudio (--help|status) .*"),
    ("CLI start", r"target: median .*"),
    ("rules vs pyfim", r"target: ours / pyfim .*"),
    ("save during a build", r"saves while the build held the store: .*"),
    ("save during a build", r"save time: .*"),
    ("save during a build", r"the old way .*"),
    ("Online Retail build", r"TOTAL build .*"),
    ("Online Retail build", r"peak memory, all processes at once .*"),
    ("large-shop build", r"TOTAL build .*"),
    ("large-shop build", r"peak memory, all processes at once .*"),
    ("large-shop build", r"stage map .*"),
]


def run_part(title: str, args: list[str], log: dict[str, list[str]]) -> float:
    """Run one bench script, echo its output as it comes, keep its lines for the summary."""
    print(f"\n{'=' * 100}\n{title}: {' '.join(args)}\n{'=' * 100}", flush=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = log.setdefault(title, [])
    for line in proc.stdout:
        if "\r" in line or "it/s]" in line:   # progress bars: not part of the record
            continue
        print(line, end="", flush=True)
        lines.append(line.strip())
    rc = proc.wait()
    if rc:
        lines.append(f"FAILED: exit status {rc}")
        print(f"{title}: FAILED with exit status {rc}", flush=True)
    return time.perf_counter() - t0


def summary(log: dict[str, list[str]], seconds: dict[str, float]) -> list[str]:
    out = []
    for title in log:
        out.append(f"{title} ({seconds[title]:.0f} s)")
        pats = [re.compile(p) for t, p in SUMMARY if t == title]
        found = [ln for ln in log[title] if any(p.search(ln) for p in pats)
                 or ln.startswith("FAILED")]
        out += [f"  {ln}" for ln in found] or ["  (no figures: see the output above)"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--million-users", type=int, default=0,
                    help="generate a demo shop of N shoppers (segstudio demo) and time its build")
    ap.add_argument("--million-store", help="time the build of this existing store instead")
    ap.add_argument("--keep", action="store_true", help="keep a generated store")
    ap.add_argument("--rules-repeat", type=int, default=5, help="best of N per rules side")
    a = ap.parse_args(argv)
    py = lambda script, *rest: [f"bench/{script}", *rest]  # noqa: E731
    parts = [("CLI start", py("bench_cli.py", "--runs", "10")),
             ("rules vs pyfim", py("bench_rules.py", "--repeat", str(a.rules_repeat))),
             ("save during a build", py("bench_store_writes.py")),
             ("Online Retail build", py("bench_build.py"))]
    log: dict[str, list[str]] = {}
    seconds: dict[str, float] = {}
    for title, args in parts:
        seconds[title] = run_part(title, args, log)
    tmp = None
    store = a.million_store
    if a.million_users and not store:
        tmp = tempfile.mkdtemp(prefix="segstudio-scale-")
        store = str(Path(tmp) / "million.duckdb")
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import sys; from core.cli import main; "
                        "sys.exit(main(sys.argv[1:]))", "demo", "--users", str(a.million_users),
                        "--db", store, "--force", "--quiet"], cwd=ROOT, check=True)
        print(f"\ngenerated {a.million_users:,} shoppers in {time.perf_counter() - t0:.0f} s: "
              f"{store}", flush=True)
    try:
        if store:
            title = "large-shop build"
            seconds[title] = run_part(title, py("bench_build.py", "--store", store), log)
    finally:
        if tmp and not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{'=' * 100}\nSummary (issue 14's targets; each part's verdict as it printed it)")
    print("\n".join(summary(log, seconds)))
    if not store:
        print("large-shop build: not run (--million-users 1000000 or --million-store PATH)")
    return 0 if not any(ln.startswith("FAILED") for v in log.values() for ln in v) else 1


if __name__ == "__main__":
    sys.exit(main())
