"""Benchmark: a full `segstudio build` on UCI Online Retail (and optionally the demo shop).

Prints each stage's time and the total (target, issue 14: the whole Online Retail build within
60 s cold on a 2-core CPU; the map is laid out in the background, so its line is what the build
waited for it, and the layout's own time is printed beside), the segmentation quality (silhouette, stability ARI), the segment names, and the encoder's
validation NDCG@10 against the plain mean-of-item-embeddings profile.

    python bench/bench_build.py                     # Online Retail from ../shared/data
    python bench/bench_build.py --demo-users 2000   # also the generated demo shop
    python bench/bench_build.py --store /tmp/or.duckdb --keep   # keep the store for the dashboard
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from core.pipeline import BuildParams, build  # noqa: E402
from core.progress import TqdmProgress  # noqa: E402
from core.store import Store  # noqa: E402

SHARED = Path(os.environ.get("SEGSTUDIO_SHARED_DATA", ROOT.parent / "shared" / "data"))


class TreeMemory:
    """Samples, every ``every`` seconds, the resident memory of this process and every process
    under it (the build's background workers) added together: what the machine holds at once,
    which the per-process peaks overstate (they are reached at different times)."""

    def __init__(self, every: float = 2.0):
        import threading

        self.every, self.peak, self.samples = every, 0, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _tree_rss() -> int:
        kids: dict[int, list[int]] = {}
        rss: dict[int, int] = {}
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                stat = (d / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                rss[int(d.name)] = int((d / "statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
        total, todo = 0, [os.getpid()]
        while todo:
            p = todo.pop()
            total += rss.get(p, 0)
            todo += kids.get(p, [])
        return total

    def _run(self):
        while not self._stop.wait(self.every):
            b = self._tree_rss()
            self.samples.append(b)
            self.peak = max(self.peak, b)

    def __enter__(self):
        if Path("/proc/self/statm").exists():
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()

    def above(self, limit_bytes: float) -> float:
        return self.every * sum(b > limit_bytes for b in self.samples)


def report(title: str, store: Store, metrics: dict, extra: dict | None = None, *,
           target: float | None = 60.0, tree: "TreeMemory | None" = None) -> None:
    print(f"\n=== {title}")
    for k, v in (extra or {}).items():
        print(f"  {k:<22} {v}")
    print(f"  shoppers {metrics['n_users']:,}, items {metrics['n_items']:,}, events {metrics['n_events']:,}")
    for name, secs in metrics["stage_seconds"].items():
        note = ""
        if name == "map" and metrics["map"].get("laid_out_in") == "background worker":
            note = f"   (laid out in {metrics['map']['layout_seconds']:.1f} s in the background)"
        print(f"  stage {name:<12} {secs:8.2f} s{note}")
    total = metrics["total_seconds"]
    print(f"  TOTAL build          {total:8.2f} s" + (
        f"   (target <= {target:,.0f} s: {'met' if total <= target else 'MISSED'})" if target else ""))
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    from core.engine.background import peak_memory

    workers = peak_memory()
    print(f"  peak memory          {own:8.2f} GB this process; background workers: "
          + (", ".join(f"{k} {v:.2f} GB" for k, v in workers.items()) or "none")
          + f"; sum of the peaks {own + sum(workers.values()):.2f} GB")
    if tree is not None and tree.samples:
        # GB above is 2**30 bytes (as ru_maxrss is read); the decimal figure beside it
        print(f"  peak memory, all processes at once {tree.peak / 2**30:.2f} GB = "
              f"{tree.peak / 1e9:.2f} x 10^9 bytes (sampled every {tree.every:g} s; above "
              f"12 x 2^30 bytes for {tree.above(12 * 2**30):.0f} s, above 12 x 10^9 for "
              f"{tree.above(12e9):.0f} s)")
    from core.explore.model import sampling_notes

    for note in sampling_notes(metrics):
        print(f"  sampled: {note['step']}: {note['text']}")
    for stage_name, m in metrics.items():
        if isinstance(m, dict):
            for key in ("trained_in", "evaluated_in", "laid_out_in", "made_in"):
                if m.get(key):
                    waited = (f" (made in {m['computed_seconds']} s; the build waited "
                              f"{m['build_waited_seconds']} s)"
                              if key == "made_in" and "build_waited_seconds" in m else "")
                    print(f"  {stage_name}: {key.replace('_', ' ')} {m[key]}{waited}")
    enc = (metrics.get("predictions") or {}).get("encoder") or {}
    if enc.get("trained_in"):
        print(f"  predictions encoder trained in {enc['trained_in']} ({enc.get('seconds')} s)")
    from core.cli.status import segment_quality_lines

    print(f"  taste segments: {metrics.get('method')} k={metrics.get('k')} silhouette "
          f"{metrics.get('silhouette') or float('nan'):.3f}")
    for line in segment_quality_lines(metrics):
        print("  " + line)
    enc = metrics.get("encoder", {})
    if enc:
        e, b = enc.get("val_ndcg10"), enc.get("baseline_mean_embedding_ndcg10")
        ratio = f"{e / b:.2f}x" if e and b else "n/a"
        print(f"  encoder val NDCG@10 {e}  vs mean-of-item-embeddings {b}  ratio {ratio}  "
              f"({enc.get('epochs')} epochs on {enc.get('device')})")
    con = store.read()
    try:
        rows = con.execute(
            "SELECT segment_id, name, size, description FROM segment_info WHERE run_id = ? "
            "ORDER BY segment_id", [metrics["run_id"]]).fetchall()
    finally:
        con.close()
    for sid, name, size, desc in rows:
        print(f"  [{sid:>2}] {name:<38} {size:>7,}  {desc}")


def planted_ari(store: Store, run_id: int) -> float:
    """Adjusted Rand index of a demo build's taste segments against the planted shopper types."""
    from sklearn.metrics import adjusted_rand_score

    con = store.read()
    try:
        pairs = con.execute(
            "SELECT t.shopper_type, s.segment_id FROM demo_truth t JOIN segments s "
            "USING (user_id) WHERE s.run_id = ?", [run_id]).fetchall()
    finally:
        con.close()
    return adjusted_rand_score([p[0] for p in pairs], [p[1] for p in pairs])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", help="store path (default: a temporary file)")
    ap.add_argument("--keep", action="store_true", help="keep the store afterwards")
    ap.add_argument("--demo-users", type=int, default=0, help="also build a demo shop of N users")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    from core.ingest import ingest_file

    tmp = tempfile.mkdtemp(prefix="segstudio-bench-")
    path = Path(args.store) if args.store else Path(tmp) / "online_retail.duckdb"
    store = Store(path)
    prog = TqdmProgress(enabled=sys.stderr.isatty())
    src = SHARED / "online_retail" / "online_retail.csv.gz"
    if not store.exists():
        t0 = time.perf_counter()
        rep = ingest_file(store, src, "online-retail", progress=prog)
        t_ingest = time.perf_counter() - t0
    else:
        rep, t_ingest = {"note": "store existed, ingest skipped"}, 0.0
    with TreeMemory() as tree:
        metrics = build(store, BuildParams(device=args.device), progress=prog)
    con = store.read()
    try:  # Online Retail, loaded here or before (its 60 s target), or another store
        own_data = bool(con.execute("SELECT count(*) FROM ingests WHERE format = 'online-retail'"
                                    ).fetchall()[0][0])
    finally:
        con.close()
    big = metrics.get("n_users", 0) >= 1_000_000
    report("Online Retail" if own_data else f"The store {path.name}", store, metrics, {
        "ingest seconds": f"{t_ingest:.2f}",
        "rows read/loaded/quar/dup": f"{rep.get('rows_read')}/{rep.get('rows_loaded')}/"
                                     f"{rep.get('rows_quarantined')}/{rep.get('rows_duplicate')}",
    }, target=60.0 if own_data else (1800.0 if big else None), tree=tree)

    if args.demo_users:
        from core.demo import generate_demo

        dstore = Store(Path(tmp) / "demo.duckdb")
        t0 = time.perf_counter()
        generate_demo(dstore, users=args.demo_users, seed=42, progress=prog)
        t_demo = time.perf_counter() - t0
        dm = build(dstore, BuildParams(device=args.device), progress=prog)
        ari = planted_ari(dstore, dm["run_id"])
        report(f"Demo shop ({args.demo_users:,} shoppers)", dstore, dm, {
            "generate seconds": f"{t_demo:.2f}",
            "ARI vs planted types": f"{ari:.3f}",
        })
    if not args.keep and not args.store:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
