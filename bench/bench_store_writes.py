"""Saving a segment while a build runs: how long the save takes now, and what the old way cost.

Generates a demo shop, starts a real `segstudio build` in another process, and while that build
holds the store saves segments (they go to the records file, core/store/records.py). Then, for
comparison, times a small write through the store itself (the old way a save worked: wait for
the build to finish, copy the whole store, publish).

    .venv/bin/python bench/bench_store_writes.py [--demo-users 600] [--saves 10]

``--store PATH``: save segments into an existing store while a build that you started holds it
(e.g. the million-shopper store during its build); prints the save times and the store's size.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _locked(lock: Path) -> bool:
    try:
        with open(lock, "a+") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            return False
    except BlockingIOError:
        return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo-users", type=int, default=600)
    ap.add_argument("--saves", type=int, default=10)
    ap.add_argument("--store", help="an existing store whose build is running now")
    args = ap.parse_args()

    from core import explore as ex
    from core.demo import generate_demo
    from core.store import Store

    if args.store:
        during_build(Store(Path(args.store)), args.saves)
        return

    with tempfile.TemporaryDirectory(prefix="bench-writes-") as d:
        store = Store(Path(d) / "shop.duckdb")
        generate_demo(store, users=args.demo_users, seed=7)
        with store.read() as con:
            users = [r[0] for r in con.execute("SELECT user_id FROM users ORDER BY 1 LIMIT 200").fetchall()]
        exe = Path(sys.executable).parent / "segstudio"
        t_build = time.perf_counter()
        build = subprocess.Popen([str(exe), "build", "--db", str(store.path), "-q", "--no-evaluate"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(ROOT))
        lock = store.path.with_name(store.path.name + ".lock")
        while not _locked(lock):
            if build.poll() is not None:
                raise SystemExit("the build finished before any save could run")
            time.sleep(0.05)
        times, during = [], []
        for i in range(args.saves):
            t0 = time.perf_counter()
            ex.save_segment(store, f"Saved during build {i}", users[i * 10:(i + 1) * 10])
            times.append(time.perf_counter() - t0)
            during.append(build.poll() is None and _locked(lock))
        t_saves_done = time.perf_counter()
        build.wait()
        t_build_done = time.perf_counter()
        if build.returncode != 0:
            raise SystemExit(f"the build failed (exit {build.returncode})")
        # the old way: a write through the store (waits for the lock, copies the whole store)
        t0 = time.perf_counter()
        with store.write() as con:
            con.execute("INSERT INTO meta VALUES ('bench_old_style_save', 'x')")
        old_copy = time.perf_counter() - t0
        size = store.path.stat().st_size
        rsize = store.records_path.stat().st_size
        with store.read() as con:
            n_saved = con.execute("SELECT count(*) FROM records.saved_segments").fetchone()[0]

    ms = [t * 1000 for t in times]
    print(f"demo shop: {args.demo_users:,} shoppers; build ran {t_build_done - t_build:.1f} s")
    print(f"saves while the build held the store: {sum(during)}/{len(during)} "
          f"(all {n_saved} saved segments readable afterwards)")
    print(f"  save time: median {statistics.median(ms):.0f} ms, max {max(ms):.0f} ms "
          f"(records file {rsize / 1e6:.2f} MB)")
    print(f"the old way (write through the store): would have waited "
          f"{t_build_done - t_saves_done:.1f}+ s for the build, then {old_copy * 1000:.0f} ms to "
          f"copy and publish the {size / 1e6:.1f} MB store")
    print(f"ratio, old way's wait / median save now: "
          f"{(t_build_done - t_saves_done + old_copy) / statistics.median(times):,.0f}x")
    print(f"(load average now: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")


def during_build(store, saves: int) -> None:
    """Saves into ``store`` while another process's build holds it."""
    from core import explore as ex

    lock = store.path.with_name(store.path.name + ".lock")
    if not _locked(lock):
        raise SystemExit(f"no build holds {store.path} now: start `segstudio build` on it first")
    t0 = time.perf_counter()
    users = [f"u{i:07d}" for i in range(saves * 10)]
    with store.read() as con:
        known = [r[0] for r in con.execute("SELECT user_id FROM users ORDER BY 1 LIMIT ?",
                                           [saves * 10]).fetchall()]
    users = known or users
    t_read = time.perf_counter() - t0
    times, during = [], []
    for i in range(saves):
        t0 = time.perf_counter()
        ex.save_segment(store, f"Saved during the build {time.time():.0f}-{i}",
                        users[i * 10:(i + 1) * 10])
        times.append(time.perf_counter() - t0)
        during.append(_locked(lock))
    ms = [t * 1000 for t in times]
    print(f"store {store.path} ({store.path.stat().st_size / 1e9:.2f} GB), held by a build: "
          f"{sum(during)}/{len(during)} saves ran while it held the store")
    print(f"  save time: median {statistics.median(ms):.0f} ms, max {max(ms):.0f} ms "
          f"(records file {store.records_path.stat().st_size / 1e6:.2f} MB; reading {len(users)} "
          f"shopper ids from the published store took {t_read * 1000:.0f} ms)")
    print(f"(load average now: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
