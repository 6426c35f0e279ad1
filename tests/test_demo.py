"""The demo shop: deterministic, referentially sound, seasonal, with planted shopper types."""

from __future__ import annotations

import argparse
import json

import pytest

from core.demo import SHOPPER_TYPES, DemoExistsError, generate_demo
from core.store import Store


def _q(store, sql, params=None):
    with store.read() as con:
        return con.execute(sql, params or []).fetchall()


def _snapshot(store):
    return {
        t: _q(store, f"SELECT * FROM {t} ORDER BY ALL")
        for t in ("users", "items", "events", "demo_truth")
    }


def test_same_seed_same_shop_other_seed_other_shop(tmp_path):
    a, b, c = (Store(tmp_path / f"{n}.duckdb") for n in "abc")
    generate_demo(a, users=150, seed=3)
    generate_demo(b, users=150, seed=3)
    generate_demo(c, users=150, seed=4)
    sa, sb, sc = _snapshot(a), _snapshot(b), _snapshot(c)
    assert sa == sb
    for t in ("items", "events", "demo_truth"):
        assert sa[t] != sc[t]
    assert len(sa["events"]) > 5000


def test_sizes_ids_and_type_shares(demo_store):
    assert _q(demo_store, "SELECT count(*), count(DISTINCT user_id) FROM users") == [(600, 600)]
    assert _q(demo_store, "SELECT count(*), count(DISTINCT item_id) FROM items") == [(900, 900)]
    shares = dict(_q(demo_store, "SELECT shopper_type, count(*) / 600 FROM demo_truth GROUP BY 1"))
    assert set(shares) == set(SHOPPER_TYPES)
    assert min(shares.values()) >= 0.08
    # exact proportional allocation of the configured shares
    assert shares["bargain_hunter"] == pytest.approx(0.20)
    assert shares["night_owl_browser"] == pytest.approx(0.12)
    n_events = _q(demo_store, "SELECT count(*) FROM events")[0][0]
    assert 25_000 < n_events < 80_000
    assert _q(demo_store, "SELECT count(DISTINCT event_id) = count(*), min(event_id) FROM events") == [(True, 1)]


def test_referential_integrity_and_revenue_conventions(demo_store):
    assert _q(demo_store, "SELECT count(*) FROM events WHERE item_id NOT IN (SELECT item_id FROM items)") == [(0,)]
    assert _q(demo_store, "SELECT count(*) FROM events WHERE user_id IS NULL "
                          "OR user_id NOT IN (SELECT user_id FROM users)") == [(0,)]
    assert _q(demo_store, "SELECT count(*) FROM demo_truth WHERE user_id NOT IN (SELECT user_id FROM users)") == [(0,)]
    # every event type occurs
    types = {r[0] for r in _q(demo_store, "SELECT DISTINCT event_type FROM events")}
    assert types == {"view", "click", "cart", "purchase", "favorite", "review", "return"}
    # purchases: positive quantity and price, in a basket and a session
    assert _q(demo_store, """SELECT count(*) FROM events WHERE event_type = 'purchase' AND
        (quantity <= 0 OR unit_price <= 0 OR basket_id IS NULL OR session_id IS NULL)""") == [(0,)]
    # returns: negative quantity, referring to an order of the same shopper that bought the item
    assert _q(demo_store, "SELECT count(*) FROM events WHERE event_type = 'return' AND quantity >= 0") == [(0,)]
    assert _q(demo_store, """SELECT count(*) FROM events r WHERE event_type = 'return' AND NOT EXISTS (
        SELECT 1 FROM events p WHERE p.event_type = 'purchase' AND p.basket_id = r.basket_id
        AND p.item_id = r.item_id AND p.user_id = r.user_id AND p.ts < r.ts)""") == [(0,)]
    # a basket belongs to one shopper; every event lies in 2025
    assert _q(demo_store, "SELECT max(n) FROM (SELECT count(DISTINCT user_id) n FROM events "
                          "WHERE basket_id IS NOT NULL GROUP BY basket_id)") == [(1,)]
    assert _q(demo_store, "SELECT min(ts) >= '2025-01-01', max(ts) < '2026-01-01' FROM events") == [(True, True)]
    # first_seen: the start of the shopper's first session, no later than the first event
    assert _q(demo_store, """SELECT count(*) FROM users u JOIN (SELECT user_id, min(ts) t FROM events
        GROUP BY 1) e USING (user_id) WHERE e.t < u.first_seen""") == [(0,)]


def test_catalogue_reads_like_a_shop(demo_store):
    rows = _q(demo_store, "SELECT title, description, category_path, brand, price FROM items")
    for title, desc, path, brand, price in rows:
        assert len(title.split()) >= 4 and title[0].isupper()
        assert brand in desc and len(desc) > 60
        assert len(path.split(" > ")) == 3
        assert 0.5 < price < 1000
    assert len({r[0] for r in rows}) > 0.9 * len(rows)
    assert len({r[3] for r in rows}) >= 20
    assert len({r[2].split(" > ")[0] for r in rows}) == 6
    # prices differ by category: furniture costs far more than greeting cards
    med = dict(_q(demo_store, "SELECT split_part(category_path, ' > ', 3), median(price) FROM items GROUP BY 1"))
    assert med["Furniture"] > 5 * med["Cards"]
    attrs = [json.loads(r[0]) for r in _q(demo_store, "SELECT attributes FROM users")]
    assert all({"country", "age_band", "signup_channel"} <= set(a) for a in attrs)
    assert sum(a["country"] == "United Kingdom" for a in attrs) / len(attrs) > 0.5


def test_weekly_and_seasonal_rhythm(demo_store):
    # holiday gift buyers buy almost only in November-December; the shop as a whole peaks there
    (gift_share,) = _q(demo_store, """SELECT avg(CASE WHEN month(ts) IN (11, 12) THEN 1 ELSE 0 END)
        FROM events JOIN demo_truth USING (user_id)
        WHERE event_type = 'purchase' AND shopper_type = 'holiday_gift_buyer'""")[0]
    assert gift_share > 0.95
    (shop_share,) = _q(demo_store, """SELECT avg(CASE WHEN month(ts) IN (11, 12) THEN 1 ELSE 0 END)
        FROM events WHERE event_type = 'purchase'""")[0]
    assert shop_share > 0.25  # two months of twelve would be 0.17
    (others,) = _q(demo_store, """SELECT avg(CASE WHEN month(ts) IN (11, 12) THEN 1 ELSE 0 END)
        FROM events JOIN demo_truth USING (user_id)
        WHERE event_type = 'purchase' AND shopper_type = 'category_specialist'""")[0]
    assert others < 0.3
    # weekends are busier per day than weekdays
    per_day = dict(_q(demo_store, """SELECT dayofweek(ts) IN (0, 6), count(DISTINCT session_id)
        / count(DISTINCT CAST(ts AS DATE)) FROM events WHERE session_id IS NOT NULL GROUP BY 1"""))
    assert per_day[True] > 1.15 * per_day[False]
    # night owls shop late
    (owl_evening,) = _q(demo_store, """SELECT avg(CASE WHEN hour(ts) >= 18 THEN 1 ELSE 0 END)
        FROM events JOIN demo_truth USING (user_id) WHERE shopper_type = 'night_owl_browser'""")[0]
    assert owl_evening > 0.7


def test_reconciliation_row(demo_store):
    rows = _q(demo_store, """SELECT ingest_id, format, rows_read, rows_loaded, rows_quarantined,
        rows_duplicate, details FROM ingests""")
    assert len(rows) == 1
    ingest_id, fmt, read, loaded, quarantined, dup, details = rows[0]
    n = _q(demo_store, "SELECT count(*) FROM events WHERE ingest_id = ?", [ingest_id])[0][0]
    assert (fmt, read, loaded, quarantined, dup) == ("demo", n, n, 0, 0)
    assert _q(demo_store, "SELECT count(*) FROM users WHERE ingest_id = ?", [ingest_id]) == [(600,)]
    assert _q(demo_store, "SELECT count(*) FROM items WHERE ingest_id = ?", [ingest_id]) == [(900,)]
    details = json.loads(details)
    assert details["seed"] == 7
    rev = _q(demo_store, "SELECT sum(quantity * unit_price) FROM events")[0][0]
    assert details["revenue"]["revenue_loaded"] == pytest.approx(rev, abs=0.01)
    assert details["revenue"]["revenue_reconciles"] is True
    # net revenue: purchases minus returns
    gross, returned = _q(demo_store, """SELECT sum(quantity * unit_price) FILTER (event_type = 'purchase'),
        sum(quantity * unit_price) FILTER (event_type = 'return') FROM events""")[0]
    assert rev == pytest.approx(gross + returned) and returned < 0 < gross
    try:
        from core.ingest.status import ingest_summary
    except ImportError:  # the ingest stage reports this too once it is there
        return
    with demo_store.read() as con:
        summary = ingest_summary(con)
    assert summary["totals"] == {"users": 600, "items": 900, "events": n}
    assert summary["ingests"][0]["reconciles"] is True


def test_rerun_is_a_no_op_other_demo_needs_force_real_data_is_never_touched(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    first = generate_demo(store, users=100, seed=1)
    assert first["skipped_already_generated"] is False
    version = store.version()
    again = generate_demo(store, users=100, seed=1)
    assert again["skipped_already_generated"] is True and store.version() == version
    with pytest.raises(DemoExistsError, match="--force"):
        generate_demo(store, users=120, seed=1)
    with store.write() as con:  # a build output that would describe the old shoppers
        con.execute("INSERT INTO runs VALUES (1, 'build', 'complete', NULL, NULL, '{}', 'x', '{}')")
    replaced = generate_demo(store, users=120, seed=1, force=True)
    assert replaced["ingest_id"] == 1
    assert _q(store, "SELECT count(*) FROM users") == [(120,)]
    assert _q(store, "SELECT count(*) FROM demo_truth") == [(120,)]
    assert _q(store, "SELECT count(*), sum(rows_loaded) FROM ingests") == [(1, replaced["events"])]
    assert _q(store, "SELECT count(*) FROM runs") == [(0,)]

    real = Store(tmp_path / "real.duckdb")
    with real.write() as con:
        con.execute("INSERT INTO ingests VALUES (1, NULL, NULL, 'orders.csv', 'online-retail', 'f', "
                    "1, 1, 0, 0, '{}')")
        con.execute("INSERT INTO users VALUES ('17850', '{}', NULL, 1)")
    for force in (False, True):
        with pytest.raises(DemoExistsError, match="another store"):
            generate_demo(real, users=100, seed=1, force=force)
    assert _q(real, "SELECT user_id FROM users") == [("17850",)]


def test_bad_size_is_refused_with_the_fix(tmp_path):
    with pytest.raises(ValueError, match="--users must be at least 50"):
        generate_demo(Store(tmp_path / "s.duckdb"), users=10)
    assert not (tmp_path / "s.duckdb").exists()


def test_cli_json(tmp_path, capsys):
    from core.cli import demo
    from core.config import load_settings

    settings = load_settings(db=str(tmp_path / "cli.duckdb"))
    args = argparse.Namespace(users=80, seed=5, force=False, json=True, quiet=True)
    assert demo.run(args, settings) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["users"] == 80 and out["format"] == "demo" and out["reconciles"] is True
    assert out["rows_read"] == out["rows_loaded"] == out["events"]
    assert out["items"] == 500  # small shops still get a real catalogue
    args.json = False
    assert demo.run(args, settings) == 0
    assert "nothing to do" in capsys.readouterr().out
