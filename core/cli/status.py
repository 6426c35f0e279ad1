"""`segstudio status`: what is in the store, how it was loaded, and which build is serving."""

from __future__ import annotations

from core.cli import print_json

HELP = "show what is in the store: data loaded, quarantined rows, builds"
DESCRIPTION = """\
Show what is in the store: how many shoppers, items and events it holds, every ingest with its
reconciliation (rows read = loaded + quarantined + exact duplicates skipped), why rows were
quarantined, and the builds (the latest complete one is what the dashboard shows).

Example:
  segstudio status
  segstudio status --json > status.json
"""


def add_arguments(parser) -> None:
    parser.add_argument("--runs", type=int, default=5, help="how many recent builds to list (default 5)")


def collect(store, n_runs: int = 5) -> dict:
    from core.ingest.status import ingest_summary
    from core.store import latest_run, list_runs

    con = store.read()
    try:
        summary = ingest_summary(con)
        run = latest_run(con)
        runs = list_runs(con, "build")[:n_runs]
        pruned = con.execute("SELECT count(*) FROM runs WHERE status = 'pruned'").fetchone()[0]
        saved = con.execute("SELECT count(*) FROM records.saved_segments").fetchone()[0]
    finally:
        con.close()
    return {
        "store": str(store.path),
        "size_bytes": store.path.stat().st_size,
        **summary,
        "records_file": str(store.records_path) if store.records_path.exists() else None,
        "saved_segments": int(saved),
        "serving_run": run,
        "recent_runs": runs,
        "pruned_runs": int(pruned),
    }


def _n(x) -> str:
    return f"{x:,}" if isinstance(x, int) else str(x)


def run(args, settings) -> int:
    status = collect(settings.store(), args.runs)
    if args.json:
        print_json(status)
        return 0
    print(f"Store: {status['store']} ({status['size_bytes'] / 1e6:,.1f} MB)")
    totals = status.get("totals", {})
    if totals:
        print("Contents: " + ", ".join(f"{_n(v)} {k}" for k, v in totals.items()))
    ingests = status.get("ingests", [])
    if not ingests:
        print("No data yet: run `segstudio demo` or `segstudio ingest FILE --format FORMAT`.")
    for ing in ingests:
        ok = "reconciles" if ing.get("reconciles", True) else "DOES NOT RECONCILE"
        print(
            f"  ingest {ing['ingest_id']}: {ing['source_file']} ({ing['format']}): "
            f"read {_n(ing['rows_read'])} = loaded {_n(ing['rows_loaded'])} + quarantined "
            f"{_n(ing['rows_quarantined'])} + duplicates skipped {_n(ing['rows_duplicate'])} ({ok})"
        )
        from core.cli.ingest import file_lines

        for line in file_lines(ing.get("files") or [], indent="    "):
            print(line)
        for w in ing.get("warnings") or []:
            print(f"    {w}")
        rev = ing.get("revenue")
        if rev:
            print(
                f"    revenue {rev['revenue_read']:,.2f} = loaded {rev['revenue_loaded']:,.2f} + "
                f"quarantined {rev['revenue_quarantined']:,.2f} + duplicates {rev['revenue_duplicate']:,.2f}"
            )
    reasons = status.get("quarantine_reasons") or {}
    if reasons:
        print("Quarantined rows by reason:")
        for reason, n in reasons.items():
            print(f"  {_n(n):>10}  {reason}")
    for q in status.get("side_quarantine") or []:
        print(f"Quarantined in {q['file']}: {_n(q['rows'])}  {q['reason']}")
    run_ = status["serving_run"]
    if run_:
        print(f"Serving build {run_['run_id']} finished {run_['finished_at']}.")
        for line in segment_quality_lines(run_["metrics"]):
            print(line)
        from core.explore.model import sampling_notes

        for note in sampling_notes(run_["metrics"]):
            print(f"  Sampled (a very large shop): {note['text']}")
    else:
        print("No complete build yet: run `segstudio build`.")
    if status["pruned_runs"]:
        print(f"{status['pruned_runs']:,} older build(s) pruned (their outputs deleted; see "
              f"--keep-runs on `segstudio build`).")
    if status["saved_segments"]:
        print(f"{status['saved_segments']:,} saved segment(s), in {status['records_file']}.")
    return 0


def _f(x, fmt="{:.2f}") -> str:
    return "n/a" if x is None else fmt.format(x)


def segment_quality_lines(metrics: dict) -> list[str]:
    """Both lenses' quality in words: stability, predictive validity, and a warning when weak."""
    from core.segments.report import lens_report

    lines = []
    labels = {"taste": "Taste segments", "lifecycle": "Lifecycle stages"}
    for lens, r in lens_report(metrics).items():
        v = r.get("validity") or {}
        seg, pop, ref = v.get("segments") or {}, v.get("popularity") or {}, \
            v.get("tfidf_kmeans") or {}
        lines.append(f"{labels[lens]}: {r.get('k')} segments; stability {_f(r['stability_seed'])} "
                     f"between seeds, {_f(r['stability_bootstrap'])} between 80% samples (1 = same)")
        if seg:
            lines.append(
                f"  predict the next basket (NDCG@10, {seg.get('shoppers', 0):,} shoppers' last basket "
                f"held out): {_f(seg.get('ndcg10'), '{:.3f}')} vs best-sellers "
                f"{_f(pop.get('ndcg10'), '{:.3f}')} and a TF-IDF clustering "
                f"{_f(ref.get('ndcg10'), '{:.3f}')} ({_f(v.get('ratio_vs_tfidf'))}x)")
        for why in r["weak"]:
            lines.append(f"  WEAK: {why}.")
        if r["advice"]:
            lines.append(f"  {r['advice']}")
    return lines
