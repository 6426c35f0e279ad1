"""Benchmark: time to first paint of every dashboard page, measured in a real browser.

Starts `segstudio serve` on a store, then opens each page in headless Chromium (Debian's
/usr/bin/chromium) in a fresh browser session and times from navigation until the page has
finished running and drawn its charts and tables ("first paint" of the complete page).
Each page is measured cold (first visit after the server started, in a fresh browser profile:
the server fills its caches and the browser downloads the app's scripts) and warm (a new
Streamlit session later, in a browser that has visited before: a marketer opening the page again,
or a colleague after them). Both include drawing every visible chart and table.

    python bench/bench_dashboard.py --store /tmp/demo.duckdb
    python bench/bench_dashboard.py --demo-users 2000            # generate + build a demo first
    python bench/bench_dashboard.py --store /tmp/or.duckdb --json out.json
    python bench/bench_dashboard.py --store /tmp/or.duckdb --lens lifecycle --scope 3
                                     # the lifecycle lens, narrowed to taste segment 3

Prints a table (seconds) and, with --json, writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from test_browser import (CHROMIUM, CHROMIUM_ARGS, PAGES, free_port, page_errors,  # noqa: E402
                          start_server, stop_server, wait_ready)


def measure(store_path: Path, repeats: int = 2, query: str = "") -> dict:
    from playwright.sync_api import sync_playwright

    port = free_port()
    t0 = time.perf_counter()
    proc = start_server(store_path, port)
    server_start = time.perf_counter() - t0
    url = f"http://localhost:{port}"
    results: dict[str, dict] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            warm_ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
            for rnd in range(1 + repeats):
                for path, _ in PAGES:
                    ctx = browser.new_context(viewport={"width": 1440, "height": 1000}) if rnd == 0 \
                        else warm_ctx
                    page = ctx.new_page()
                    t = time.perf_counter()
                    page.goto(f"{url}/{path}{query}")
                    page.wait_for_selector('[data-testid="stMain"] h1', timeout=180_000)
                    first = time.perf_counter() - t
                    wait_ready(page, timeout_ms=180_000)
                    secs = time.perf_counter() - t
                    errs = page_errors(page)
                    page.close()
                    if rnd == 0:
                        ctx.close()
                    r = results.setdefault(path or "overview", {"warm": [], "warm_first": []})
                    if rnd == 0:
                        r["cold"], r["cold_first"] = secs, first
                    else:
                        r["warm"].append(secs)
                        r["warm_first"].append(first)
                    if errs:
                        r["errors"] = errs
            browser.close()
    finally:
        stop_server(proc)
    for r in results.values():
        r["warm_median"] = statistics.median(r["warm"]) if r["warm"] else None
        r["warm_first_median"] = statistics.median(r["warm_first"]) if r["warm_first"] else None
    return {"store": str(store_path), "server_start_s": server_start, "pages": results,
            "query": query}


def print_table(res: dict, title: str) -> None:
    print(f"\n=== {title}: first paint per page (s), store {res['store']}"
          + (f", pages opened with {res['query']}" if res.get("query") else ""))
    print(f"  server start (until /_stcore/health answers): {res['server_start_s']:.2f} s")
    print("  first content = the page's title is on screen; complete = the script has finished and")
    print("  every visible chart and table is drawn")
    print(f"  {'page':<16} {'cold first':>11} {'cold complete':>14} {'warm first':>11} {'warm complete':>14}")
    for name, r in res["pages"].items():
        wf = f"{r['warm_first_median']:.2f}" if r["warm_first_median"] is not None else "–"
        wc = f"{r['warm_median']:.2f}" if r["warm_median"] is not None else "–"
        flag = "  ERROR: " + r["errors"][0][:80] if r.get("errors") else ""
        print(f"  {name:<16} {r['cold_first']:>11.2f} {r['cold']:>14.2f} {wf:>11} {wc:>14}{flag}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, help="a built store to serve")
    ap.add_argument("--demo-users", type=int, default=None,
                    help="generate and build a demo shop of this many shoppers first")
    ap.add_argument("--repeats", type=int, default=2, help="warm visits per page (default 2)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--lens", choices=["taste", "lifecycle"], default=None,
                    help="open every page on this segment lens (default: the dashboard's, taste)")
    ap.add_argument("--scope", type=int, default=None,
                    help="with --lens: narrow every page to this segment of the other lens")
    args = ap.parse_args()
    query = ""
    if args.lens:
        query = f"?lens={args.lens}" + (f"&scope={args.scope}" if args.scope is not None else "")
    out = {}
    if args.demo_users:
        from core.demo import generate_demo
        from core.pipeline import BuildParams, build
        from core.store import Store

        path = Path(tempfile.mkdtemp()) / "demo.duckdb"
        store = Store(path)
        generate_demo(store, users=args.demo_users, seed=42)
        t = time.perf_counter()
        build(store, BuildParams(seed=42))
        print(f"demo shop of {args.demo_users:,} shoppers built in {time.perf_counter() - t:.1f} s")
        out["demo"] = measure(path, args.repeats, query)
        print_table(out["demo"], f"Demo shop ({args.demo_users:,} shoppers)")
    if args.store:
        out["store"] = measure(args.store, args.repeats, query)
        print_table(out["store"], args.store.name)
    if not out:
        ap.error("give --store PATH and/or --demo-users N")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
