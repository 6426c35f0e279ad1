"""Trends per month or week, for the shop and for one segment, on a hand-made shop."""

from __future__ import annotations

from datetime import datetime

from core.trends import trends

# (shopper, time, type, revenue, basket)
EVENTS = [
    ("a", "2025-01-05 10:00", "purchase", 10.0, "o1"),
    ("a", "2025-01-05 10:00", "purchase", 5.0, "o1"),     # same order, second line
    ("b", "2025-01-20 10:00", "view", None, None),
    ("a", "2025-03-02 10:00", "purchase", 20.0, "o2"),
    ("b", "2025-03-03 10:00", "purchase", 8.0, "o3"),
    ("c", "2025-03-04 10:00", "purchase", 2.0, "o4"),
    ("c", "2025-08-01 10:00", "view", None, None),
]


def _shop(con):
    for n, (u, t, typ, rev, bk) in enumerate(EVENTS):
        con.execute("INSERT INTO events VALUES (?, ?, 'i1', ?, ?, 1, ?, ?, NULL, 1, NULL)",
                    [n, u, typ, t, rev, bk])
    for u, s in (("a", 0), ("b", 1), ("c", 1)):
        con.execute("INSERT INTO segments VALUES (1, ?, ?, NULL)", [u, s])


def _rows(df):
    return [(p.strftime("%Y-%m-%d"), *r) for p, *r in df.itertuples(index=False)]


def test_monthly_trends_for_the_shop_and_a_segment(tmp_store):
    with tmp_store.write() as con:
        _shop(con)
        shop = trends(con)
        seg = trends(con, run_id=1, segment_id=1)
    assert shop.attrs["grain"] == "month"                # January to August: over 180 days
    # period, revenue, orders, active, buying, new
    assert _rows(shop) == [("2025-01-01", 15.0, 1, 2, 1, 2),
                           ("2025-03-01", 30.0, 3, 3, 3, 1),
                           ("2025-08-01", 0.0, 0, 1, 0, 0)]
    assert _rows(seg) == [("2025-01-01", 0.0, 0, 1, 0, 1),
                          ("2025-03-01", 10.0, 2, 2, 2, 1),
                          ("2025-08-01", 0.0, 0, 1, 0, 0)]


def test_a_date_range_filters_and_picks_weeks(tmp_store):
    with tmp_store.write() as con:
        _shop(con)
        df = trends(con, start=datetime(2025, 3, 1), end=datetime(2025, 4, 1))
    assert df.attrs["grain"] == "week"
    # 2 March 2025 is a Sunday: its ISO week starts Monday 24 February; 3-4 March the next week
    assert _rows(df) == [("2025-02-24", 20.0, 1, 1, 1, 0), ("2025-03-03", 10.0, 2, 2, 2, 1)]


def test_a_shoppers_activity_by_period_and_kind(tmp_store):
    from core.trends import shopper_activity

    with tmp_store.write() as con:
        _shop(con)
        a = shopper_activity(con, "a")
        c = shopper_activity(con, "c")
    assert a.attrs["grain"] == "week"                    # 5 Jan to 2 Mar: under 180 days
    assert [(p.strftime("%Y-%m-%d"), t, n, s) for p, t, n, s in a.itertuples(index=False)] == [
        ("2024-12-30", "purchase", 2, 15.0), ("2025-02-24", "purchase", 1, 20.0)]
    assert c.attrs["grain"] == "week" and c["events"].tolist() == [1, 1]
