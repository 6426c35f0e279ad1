"""The lifecycle lens: shop-relative cut-offs and stage rules, checked on a hand-made shop whose
every figure can be worked out by hand (see the comments)."""

from __future__ import annotations

import pytest

from core.segments import assign_lifecycle
from core.segments.lifecycle import STAGE_ID, cutoffs, rule_texts, shopper_rfm

# shopper -> [(order date, spend of that order)]; "now" is the last event: 2025-12-31 12:00
ORDERS = {
    "A": [("2025-12-30", 10)],                                   # 1 day ago, first order
    "B": [("2025-06-01", 100), ("2025-10-01", 100), ("2025-12-21", 100)],   # last 10 days ago
    "C": [("2025-03-01", 20), ("2025-12-11", 20)],               # last 20 days ago
    "D": [("2025-05-05", 20)],                                   # one order, 240 days ago
    "E": [("2025-01-10", 30), ("2025-09-02", 30)],               # last 120 days ago
    "F": [("2024-11-01", 125), ("2024-12-01", 125), ("2025-01-01", 125), ("2025-02-01", 125)],
    "H": [("2025-11-01", 500), ("2025-12-01", 500)],             # last 30 days ago, 1,000 spent
}


def _shop(con, prices: bool = True) -> None:
    n = 0
    for user, orders in ORDERS.items():
        for day, spend in orders:
            n += 1
            con.execute("INSERT INTO events VALUES (?, ?, 'i1', 'purchase', ?, 1, ?, ?, NULL, 1, NULL)",
                        [n, user, f"{day} 12:00:00", spend if prices else None, f"o{n}"])
    # G only looked: a browser who never bought; their view is the shop's last event
    con.execute("INSERT INTO events VALUES (999, 'G', 'i1', 'view', '2025-12-31 12:00:00', 1, NULL, "
                "NULL, NULL, 1, NULL)")
    con.execute("INSERT INTO items VALUES ('i1', 'MUG', NULL, NULL, NULL, NULL, 1)")


def _stages(con, run_id: int = 1) -> dict[str, int]:
    return dict(con.execute("SELECT user_id, segment_id FROM lifecycle_segments WHERE run_id = ?",
                            [run_id]).fetchall())


def test_cut_offs_are_percentiles_of_the_shops_buyers(tmp_store):
    with tmp_store.write() as con:
        _shop(con)
        rfm = shopper_rfm(con)
    days = {u: d for u, d in zip(rfm["user_id"], rfm["days_since_last"]) if u != "G"}
    assert days == {"A": 1, "B": 10, "C": 20, "D": 240, "E": 120, "F": 333, "H": 30}
    cut = cutoffs(rfm)
    # days since last order of the 7 buyers: 1 10 20 30 120 240 333
    #   median = 30; 75th percentile = 120 + 0.5 * (240 - 120) = 180
    # spend: 10 20 40 60 300 500 1000 -> 80th percentile = 300 + 0.8 * (500 - 300) = 460
    assert cut == {"buyers": 7, "has_prices": True, "basis": "orders", "recent_days": 30.0,
                   "lapsed_days": 180.0, "value_by": "spend", "high_value": pytest.approx(460.0)}
    rules = rule_texts(cut)
    assert rules["loyal"] == ("2 or more orders, the last within 30 days, and net spend of £460 or "
                              "more (the top 20% of buyers).")
    assert rules["at_risk"].startswith("2 or more orders, the last between 30 days and 180 days ago")


def test_every_shopper_gets_the_stage_the_rules_give(tmp_store):
    with tmp_store.write() as con:
        _shop(con)
        m = assign_lifecycle(con, 1)
        got = _stages(con)
        info = con.execute("SELECT segment_id, name, color, rule FROM lifecycle_info WHERE run_id = 1 "
                           "ORDER BY segment_id").fetchall()
    assert got == {
        "A": STAGE_ID["new"],        # first order 1 day ago
        "B": STAGE_ID["active"],     # 3 orders, last 10 days ago, 300 spent (< 460)
        "C": STAGE_ID["active"],     # 2 orders, last 20 days ago
        "D": STAGE_ID["one_off"],    # 1 order, 240 days ago
        "E": STAGE_ID["at_risk"],    # last order 120 days ago: between 30 and 180
        "F": STAGE_ID["lapsed"],     # last order 333 days ago
        "G": STAGE_ID["browsers"],   # never bought
        "H": STAGE_ID["loyal"],      # 2 orders, last 30 days ago, 1,000 spent (>= 460)
    }
    assert m["sizes"] == {0: 1, 1: 2, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1} and m["k"] == 7
    assert [r[1] for r in info] == ["Loyal high value", "Active repeat buyers", "New customers",
                                    "At risk", "One-off buyers", "Lapsed",
                                    "Browsers who never bought"]
    assert all(r[2].startswith("#") and r[3] for r in info)


def test_shops_without_prices_use_recency_and_orders(tmp_store):
    with tmp_store.write() as con:
        _shop(con, prices=False)
        m = assign_lifecycle(con, 1)
        got = _stages(con)
        name = con.execute("SELECT name FROM lifecycle_info WHERE run_id = 1 AND segment_id = 0"
                           ).fetchone()[0]
    # orders of the buyers: 1 1 2 2 2 3 4 -> 80th percentile 2.8: loyal needs 3+ orders
    assert m["cutoffs"]["value_by"] == "orders"
    assert m["cutoffs"]["high_value"] == pytest.approx(2.8)
    assert got["B"] == STAGE_ID["loyal"] and got["H"] == STAGE_ID["active"]
    assert name == "Loyal frequent buyers"
    assert "spend" not in rule_texts(m["cutoffs"])["loyal"]


def test_a_shop_where_nobody_ordered_gets_its_stages_from_visits(tmp_store):
    """A ratings file or a clickstream without purchases: every shopper would be a "browser who
    never bought". The same rules run on visits (days, or sessions, with any activity) instead:
    here the hand-made shop's order dates are review dates, and G's view is the last event."""
    with tmp_store.write() as con:
        _shop(con)
        con.execute("UPDATE events SET event_type = 'review', unit_price = NULL, basket_id = NULL "
                    "WHERE event_type = 'purchase'")
        m = assign_lifecycle(con, 1)
        got = _stages(con)
        info = dict(con.execute("SELECT segment_id, name FROM lifecycle_info WHERE run_id = 1"
                                ).fetchall())
    # days since the last visit: G 0, A 1, B 10, C 20, H 30, E 120, D 240, F 333
    #   median = (20 + 30) / 2 = 25; 75th percentile = 120 + 0.25 * (240 - 120) = 150
    # visits: A 1, D 1, G 1, C 2, E 2, H 2, B 3, F 4 -> 80th percentile 2.6: loyal needs 3
    cut = m["cutoffs"]
    assert cut == {"buyers": 8, "has_prices": False, "basis": "visits", "recent_days": 25.0,
                   "lapsed_days": 150.0, "value_by": "visits", "high_value": pytest.approx(2.6)}
    assert got == {
        "A": STAGE_ID["new"], "G": STAGE_ID["new"],   # first visit 1 and 0 days ago
        "B": STAGE_ID["loyal"],      # 3 visits, the last 10 days ago
        "C": STAGE_ID["active"],     # 2 visits, the last 20 days ago
        "D": STAGE_ID["one_off"],    # one visit, 240 days ago
        "E": STAGE_ID["at_risk"], "H": STAGE_ID["at_risk"],   # last 120 and 30 days ago
        "F": STAGE_ID["lapsed"],     # last 333 days ago
    }
    assert info == {0: "Loyal frequent visitors", 1: "Active regular visitors",
                    2: "New visitors", 3: "At risk", 4: "One-visit shoppers", 5: "Lapsed"}
    rules = rule_texts(cut)
    assert rules["loyal"] == ("2 or more visits, the last within 25 days, and 3 or more visits "
                              "(the top 20% of shoppers).")
    assert "order" not in " ".join(v for k, v in rules.items() if k != "new")

