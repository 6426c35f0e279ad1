"""The dashboard in a real browser: headless Chromium (Debian's) against `segstudio serve`.

The server asks for a password, as a real deployment would: every browser signs in on the gate's
page first. Visits every page, switches the segment lens and keeps it across pages, draws a box
on the segment map, saves the selection as a segment, downloads its CSV and checks the file (and
that its download URL is refused without a session, and that tables offer no raw "Download as
CSV"). A screenshot of each page goes to
$SEGSTUDIO_ARTIFACTS/screenshots (default ./test-artifacts).
"""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
# (url path, a heading the page must show)
PAGES = [
    ("", "Overview"),
    ("segment_map", "Segment map"),
    ("segment_detail", None),  # the segment's own name is the heading
    ("compare", "Compare"),
    ("user_profile", "Shopper profile"),
    ("rules", "Bought together"),
    ("recommend", "Recommend"),
    ("export", "Export"),
    ("model", "Model and data"),
    ("changes", "Changes over time"),
    ("audiences", "Audiences"),
]

pytestmark = pytest.mark.browser


def artifacts_dir() -> Path:
    d = Path(os.environ.get("SEGSTUDIO_ARTIFACTS", ROOT / "test-artifacts")) / "screenshots"
    d.mkdir(parents=True, exist_ok=True)
    return d


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def segstudio_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "segstudio"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from core.cli import main; sys.exit(main())"]


PASSWORD = "browser test passphrase"


def start_server(db: Path, port: int, timeout: float = 90, secrets: Path | None = None) -> subprocess.Popen:
    log = open(artifacts_dir().parent / f"serve-{port}.log", "w")
    env = dict(os.environ)
    env.pop("SEGSTUDIO_CONFIG", None)
    env.pop("SEGSTUDIO_SECRETS", None)
    extra = ["--secrets", str(secrets)] if secrets else []
    proc = subprocess.Popen(segstudio_cmd() + ["serve", "--db", str(db), "--port", str(port), "--quiet",
                                               *extra],
                            cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"segstudio serve exited early:\n{Path(log.name).read_text()}")
        try:
            with urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("segstudio serve did not answer within the timeout")


def stop_server(proc: subprocess.Popen) -> None:
    """Stop the server and anything it started (its own process group)."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


READY_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return !!app && app.getAttribute('data-test-script-state') === 'notRunning'
    && !!document.querySelector('[data-testid="stMain"] h1')
    && !document.querySelector('[data-testid="stSkeleton"], [data-testid="stSkeletonElement"], '
                               + '[data-testid="stAppSkeleton"]')
    && [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
         .every(c => !c.checkVisibility() || c.querySelector('.main-svg'))
    && [...document.querySelectorAll('[data-testid="stDataFrame"]')]
         .every(d => !d.checkVisibility() || d.querySelector('canvas, table'));
}"""


def wait_ready(page, timeout_ms: int = 60_000) -> None:
    """Until the page is complete: the script run has finished (the app says 'notRunning'), no
    skeletons are left, and every visible chart and table has drawn; checked twice, 150 ms
    apart, so a follow-up rerun is not mistaken for the end."""
    end = time.monotonic() + timeout_ms / 1000
    while True:
        left = max(1, int((end - time.monotonic()) * 1000))
        page.wait_for_function(READY_JS, timeout=left)
        page.wait_for_timeout(150)
        if page.evaluate(READY_JS):
            return
        if time.monotonic() > end:
            raise TimeoutError("the page did not finish rendering in time")


def page_errors(page) -> list[str]:
    return [e.inner_text() for e in page.query_selector_all('[data-testid="stException"]')]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def served(built_demo_store, tmp_path_factory):
    """`segstudio serve` on a private copy of the built demo store (saving writes to it)."""
    folder = tmp_path_factory.mktemp("served")
    db = folder / "served.duckdb"
    shutil.copyfile(built_demo_store.path, db)
    yield from _serve_with_password(db, folder)


def _serve_with_password(db: Path, folder: Path):
    secrets = folder / "secrets.toml"
    secrets.write_text(f'[auth]\npassword = "{PASSWORD}"\n')
    port = free_port()
    proc = start_server(db, port, secrets=secrets)
    try:
        yield f"http://localhost:{port}", db
    finally:
        stop_server(proc)


def signed_in(browser, url: str, **kwargs):
    """A browser context that has signed in on the gate's page (dashboard/gate.py)."""
    ctx = browser.new_context(**kwargs)
    page = ctx.new_page()
    page.goto(f"{url}/")
    assert "/signin" in page.url  # nothing is shown before signing in
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda u: "/signin" not in u, timeout=30_000)
    return ctx, page


def test_every_page_renders(browser, served):
    url, _ = served
    ctx, page = signed_in(browser, url, viewport={"width": 1440, "height": 1600})
    shots = artifacts_dir()
    try:
        for path, heading in PAGES:
            page.goto(f"{url}/{path}")
            wait_ready(page)
            if page.query_selector(".js-plotly-plot") is None and path in ("", "segment_map"):
                page.wait_for_selector(".js-plotly-plot", timeout=30_000)
            page.screenshot(path=str(shots / f"{path or 'overview'}.png"), full_page=True)
            assert page_errors(page) == [], f"/{path}: {page_errors(page)}"
            h1 = page.inner_text('[data-testid="stMain"] h1')
            if heading:
                assert heading in h1, f"/{path} shows {h1!r}"
            main = page.inner_text('[data-testid="stMain"]')
            assert "No build yet" not in main
        page.goto(url)
        wait_ready(page)
        assert page.get_by_text("Data health").count() >= 1
        assert page.get_by_text("Open segment").count() >= 2
    finally:
        ctx.close()


def test_box_select_save_and_download_csv(browser, served, tmp_path):
    from core import explore as ex
    from core.store import Store

    url, db = served
    ctx, page = signed_in(browser, url, viewport={"width": 1440, "height": 1600},
                          accept_downloads=True)
    try:
        page.goto(f"{url}/segment_map")
        wait_ready(page)
        page.wait_for_selector('[data-testid="stPlotlyChart"] .nsewdrag', timeout=30_000)
        drag = page.query_selector('[data-testid="stPlotlyChart"] .nsewdrag')
        box = drag.bounding_box()
        # a box over the left half of the map (box select is the map's default drag mode)
        x0, y0 = box["x"] + box["width"] * 0.02, box["y"] + box["height"] * 0.02
        x1, y1 = box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.98
        page.mouse.move(x0, y0)
        page.mouse.down()
        for i in range(1, 11):
            page.mouse.move(x0 + (x1 - x0) * i / 10, y0 + (y1 - y0) * i / 10)
        page.mouse.up()
        page.get_by_text("Your selection").wait_for(timeout=30_000)
        wait_ready(page)
        shoppers = page.locator('[data-testid="stMetric"]', has_text="Shoppers").first
        n = int(shoppers.locator('[data-testid="stMetricValue"]').inner_text().replace(",", ""))
        assert n > 0
        page.screenshot(path=str(artifacts_dir() / "segment_map_selection.png"), full_page=True)

        page.get_by_role("tab", name="Save or export").click()
        page.get_by_label("Segment name").fill("Browser test picks")
        page.get_by_role("button", name="Save as a segment").click()
        page.get_by_text("Saved “Browser test picks”").wait_for(timeout=30_000)
        wait_ready(page)
        with page.expect_download(timeout=30_000) as dl:
            page.get_by_role("button", name="Download CSV").click()
        target = tmp_path / "picks.csv"
        dl.value.save_as(target)
        page.screenshot(path=str(artifacts_dir() / "segment_map_saved.png"), full_page=True)
        # the download's URL is served to this signed-in browser, and to nobody else
        assert "/media/" in dl.value.url and page.request.get(dl.value.url).status == 200
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(dl.value.url, timeout=10)
        assert refused.value.code == 401
        # tables have no built-in "Download as CSV" (it would write =cmd|... raw)
        page.goto(f"{url}/export")
        wait_ready(page)
        page.locator('[data-testid="stDataFrame"]').first.hover()
        page.wait_for_timeout(500)
        labels = [b.get_attribute("aria-label") or b.inner_text()
                  for b in page.query_selector_all('[data-testid="stElementToolbar"] button')]
        assert labels and not any("download" in (x or "").lower() for x in labels), labels
    finally:
        ctx.close()

    rows = list(csv.reader(target.open()))
    assert rows[0] == ["user_id", "segment_id", "segment_name", "recency_days", "orders", "spend",
                       "avg_order_value"]
    assert len(rows) - 1 == n
    con = Store(db).read()
    saved = ex.find_saved(con, "Browser test picks")
    members = ex.saved_members(con, saved["saved_id"])
    assert len(members) == n and sorted(r[0] for r in rows[1:]) == members


def test_lens_switch_is_kept_while_moving_between_pages(browser, served):
    """The sidebar's lens and other-lens filter hold for the whole visit, across pages."""
    url, _ = served
    ctx, page = signed_in(browser, url, viewport={"width": 1440, "height": 1600})
    try:
        wait_ready(page)
        sidebar = page.locator('[data-testid="stSidebar"]')
        sidebar.get_by_text("Lifecycle", exact=True).click()
        page.get_by_role("heading", name="Lifecycle stages").wait_for(timeout=30_000)
        wait_ready(page)
        assert page.get_by_text("Lifecycle × taste").count() >= 1
        sidebar.get_by_role("link", name="Segment detail").click()
        page.get_by_text("Lifecycle stage", exact=True).first.wait_for(timeout=30_000)
        wait_ready(page)
        assert page_errors(page) == []
        page.screenshot(path=str(artifacts_dir() / "segment_detail_lifecycle.png"), full_page=True)
        sidebar.get_by_role("link", name="Compare").click()
        wait_ready(page)
        assert page_errors(page) == []
        main = page.inner_text('[data-testid="stMain"]')
        assert "Loyal high value" in main or "Active repeat buyers" in main
    finally:
        ctx.close()


def test_many_sessions_at_once(browser, served):
    """Six people open heavy pages at the same moment: every one gets a complete page."""
    url, _ = served
    opened = [signed_in(browser, url, viewport={"width": 1280, "height": 900}) for _ in range(6)]
    ctxs = [c for c, _ in opened]
    try:
        pages = [p for _, p in opened]
        paths = ["segment_map", "segment_detail", "user_profile", "rules", "compare", ""]
        for page, path in zip(pages, paths):
            page.goto(f"{url}/{path}", wait_until="commit")
        for page, path in zip(pages, paths):
            wait_ready(page, timeout_ms=120_000)
            assert page_errors(page) == [], f"/{path}: {page_errors(page)}"
    finally:
        for ctx in ctxs:
            ctx.close()


@pytest.fixture(scope="module")
def served_twice(built_demo_store, tmp_path_factory):
    """The demo shop built twice (the second build with another seed), served."""
    from core.pipeline import BuildParams, build
    from core.store import Store

    folder = tmp_path_factory.mktemp("served2")
    db = folder / "served.duckdb"
    shutil.copyfile(built_demo_store.path, db)
    build(Store(db), BuildParams(seed=8, evaluate=False))
    yield from _serve_with_password(db, folder)


def test_build_freeze_export_an_audience_and_see_migration(browser, served_twice, tmp_path):
    """A marketer builds a segment (top 20 % likely to buy), freezes it with a 10 % hold-out,
    downloads the campaign file, and opens the migration between the shop's two builds."""
    from core.store import Store

    url, db = served_twice
    ctx, page = signed_in(browser, url, viewport={"width": 1440, "height": 1800},
                          accept_downloads=True)
    try:
        page.goto(f"{url}/audiences")
        wait_ready(page)
        page.get_by_role("button", name="Add condition").click()       # top 20 % likely to buy
        page.get_by_text("Shoppers who match").wait_for(timeout=30_000)
        wait_ready(page)
        n = int(page.locator('[data-testid="stMetric"]', has_text="Shoppers who match")
                .locator('[data-testid="stMetricValue"]').inner_text().replace(",", ""))
        assert 100 <= n <= 140                          # 20 % of 600, ties at the cut included
        page.get_by_label("Audience name").fill("Browser campaign")
        page.get_by_label("Audience name").press("Enter")
        wait_ready(page)
        page.get_by_role("button", name="Freeze").click()
        page.get_by_text("Audience 1 'Browser campaign' frozen.").wait_for(timeout=30_000)
        wait_ready(page)
        page.screenshot(path=str(artifacts_dir() / "audiences.png"), full_page=True)
        with page.expect_download(timeout=30_000) as dl:
            page.locator('[data-testid="stDownloadButton"] button').first.click()
        target = tmp_path / "campaign.csv"
        dl.value.save_as(target)
        assert page_errors(page) == []

        page.goto(f"{url}/changes")
        wait_ready(page)
        page.get_by_text("How shoppers moved between builds").wait_for(timeout=30_000)
        assert page.locator(".js-plotly-plot").count() >= 2          # trends and the Sankey
        both = page.locator('[data-testid="stMetric"]', has_text="In both builds")
        assert both.locator('[data-testid="stMetricValue"]').inner_text() == "600"
        page.screenshot(path=str(artifacts_dir() / "changes.png"), full_page=True)
        assert page_errors(page) == []
    finally:
        ctx.close()

    rows = list(csv.reader(target.open(encoding="utf-8")))
    assert rows[0][:3] == ["Exported segment", "Definition", "Customer ID"]
    assert {r[0] for r in rows[1:]} == {"Browser campaign"}
    assert {r[1] for r in rows[1:]} == {"top 20% likely to buy"}
    con = Store(db).read()
    try:
        groups = dict(con.execute("SELECT grp, count(*) FROM records.audience_members "
                                  "GROUP BY grp").fetchall())
        logged = con.execute("SELECT what, rows FROM records.export_log").fetchall()
    finally:
        con.close()
    assert groups["treated"] + groups["holdout"] == n and groups["holdout"] == round(0.1 * n)
    assert len(rows) - 1 == groups["treated"]
    assert logged == [("audience 1 'Browser campaign' (treated)", groups["treated"])]
