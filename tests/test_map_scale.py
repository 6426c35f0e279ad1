"""The segment map at any size: every shopper as a density grid, segment names drawn where their
shoppers are (from all shoppers, not the drawn sample), and finding one shopper on the map."""

from __future__ import annotations

import math

import pytest

from core.explore import find_on_map, map_density, map_labels


def _shop(con):
    rows = []  # (user_id, x, y, segment_id)
    for k in range(101):  # a crescent: its median point (0, 0.707) is empty space
        t = math.pi * k / 100
        rows.append((f"c{k:03d}", math.cos(t), math.sin(t), 0))
    rows += [(f"g{i:02d}", 5 + 0.01 * i, 5.0, 1) for i in range(51)]
    rows += [("t1", 10.0, 10.0, 2), ("n1", -5.0, -5.0, -1)]
    con.executemany("INSERT INTO user_map VALUES (1, ?, ?, ?)", [r[:3] for r in rows])
    con.executemany("INSERT INTO segments VALUES (1, ?, ?, NULL)", [(r[0], r[3]) for r in rows])
    con.executemany("INSERT INTO segment_info (run_id, segment_id, name, color) VALUES (1, ?, ?, ?)",
                    [(0, "Bakers", "#111111"), (1, "Gardeners", "#222222"), (2, "Tiny", "#333333")])


def test_labels_sit_on_their_group_from_every_shopper(tmp_store):
    with tmp_store.write() as con:
        _shop(con)
        lab = map_labels(con, 1)
        none = map_labels(con, 1, color_by="monetary")
    # the tiny segment (1 of 154 shoppers, under 1 %) and the unassigned shopper get no label
    assert lab["group"].tolist() == ["Bakers", "Gardeners"]
    assert lab["shoppers"].tolist() == [101, 51]
    assert lab["share"].tolist() == pytest.approx([101 / 154, 51 / 154])
    # the crescent's label is on the crescent (its top, nearest the empty median point)
    assert lab.loc[0, "x"] == pytest.approx(0.0, abs=1e-12) and lab.loc[0, "y"] == pytest.approx(1.0)
    assert (lab.loc[1, "x"], lab.loc[1, "y"]) == pytest.approx((5.25, 5.0))
    assert none.empty  # a behaviour colouring has no groups to name


def test_density_counts_every_shopper(tmp_store):
    with tmp_store.write() as con:
        _shop(con)
        d = map_density(con, 1, bins=2)
        d_scoped = map_density(con, 1, bins=2, scope=None)
    assert d["total"] == 154 and d["max"] == 102
    # extent -5..10 on both axes, cells of 7.5: the crescent and the noise shopper bottom left,
    # the gardeners and the tiny segment top right
    assert d["z"] == [[102, None], [None, 52]]
    assert d["x"] == pytest.approx([-1.25, 6.25]) and d["y"] == pytest.approx([-1.25, 6.25])
    assert d_scoped == d


def test_find_a_shopper_on_the_map(tmp_store):
    with tmp_store.write() as con:
        _shop(con)
        hit = find_on_map(con, 1, "t1")
        some = find_on_map(con, 1, "g1", limit=3)
        empty = find_on_map(con, 1, "  ")
        nobody = find_on_map(con, 1, "zz")
    assert hit.to_dict("records") == [{"user_id": "t1", "x": 10.0, "y": 10.0, "segment": "Tiny"}]
    assert some["user_id"].tolist() == ["g10", "g11", "g12"]
    assert set(some["segment"]) == {"Gardeners"}
    assert empty.empty and nobody.empty
