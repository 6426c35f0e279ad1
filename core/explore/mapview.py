"""The segment map: points with hover summaries coloured by a lens, a theme or a behaviour, and
selections drawn on it (box or lasso) turned into shopper ids."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from core.explore.base import (FALLBACK_COLORS, FEATURE_LABELS, LENSES, UNASSIGNED_COLOR, _df,
                               _one, lens_tables, scope_filter, table_exists)

# Categorical colourings of the map besides the lenses themselves.
MAP_GROUPINGS = ("taste", "lifecycle", "theme")


def group_sql(grouping: str, run_id: int) -> tuple[str, str, list]:
    """(select columns, joins, parameters) giving each map point (``m``) its ``group`` (and for a
    lens ``group_id`` and ``group_color``) in a categorical colouring (MAP_GROUPINGS)."""
    if grouping in LENSES:
        G = lens_tables(grouping)
        return ((", coalesce(g.segment_id, -1) AS group_id, coalesce(gi.name, 'Unassigned') AS "
                 "\"group\", coalesce(gi.color, ?) AS group_color"),
                (f"LEFT JOIN {G.members} g ON g.run_id = m.run_id AND g.user_id = m.user_id "
                 f"LEFT JOIN {G.info} gi ON gi.run_id = m.run_id AND gi.segment_id = g.segment_id"),
                [UNASSIGNED_COLOR])
    if grouping == "theme":
        return (", coalesce(th.value, 'No theme') AS \"group\"",
                ("LEFT JOIN (SELECT user_id, value FROM user_shares WHERE run_id = ? AND dimension "
                 "= 'theme' QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY share DESC, "
                 "value) = 1) th ON th.user_id = m.user_id"),
                [run_id])
    raise ValueError(f"group the map by one of {', '.join(MAP_GROUPINGS)} (got {grouping!r})")


def map_points(con, run_id: int, *, color_by: str | None = None, max_points: int = 50_000,
               lens: str = "taste", scope=None) -> tuple[pd.DataFrame, int]:
    """Points of the segment map with a hover summary: (frame, number of shoppers on the map in
    the scope).

    ``color_by``: None or "segment" (the lens's segments), "taste", "lifecycle" (either lens),
    "theme" (each shopper's main theme) - these give ``group``, ``group_id`` and
    ``group_color`` - or a behaviour feature or a prediction ("pred:purchase", "pred:churn"...)
    (``color_value``). Every point carries its
    ``segment`` in ``lens``. Beyond ``max_points`` a deterministic sample (by a hash of the user
    id) is returned so the map stays responsive."""
    L = lens_tables(lens)
    cond, sparams = scope_filter("m.user_id", run_id, scope)
    total = int(_one(con, f"SELECT count(*) FROM user_map m WHERE m.run_id = ?{cond}",
                     [run_id, *sparams]) or 0)
    grouping = lens if color_by in (None, "segment") else color_by
    extra, join, params = "", "", []
    if grouping in MAP_GROUPINGS:
        extra, join, params = group_sql(grouping, run_id)
    elif color_by in FEATURE_LABELS:
        extra = f", f.{color_by} AS color_value"
    elif isinstance(color_by, str) and color_by.startswith("pred:"):
        # a prediction score (core.predictions): its probability or amount per shopper
        extra = ", pr.value AS color_value"
        join = ("LEFT JOIN predictions pr ON pr.run_id = m.run_id AND pr.user_id = m.user_id "
                "AND pr.score = ?")
        params = [color_by[5:]]
    elif color_by is not None:
        raise ValueError(f"colour the map by a lens ({', '.join(LENSES)}), 'theme' or a behaviour "
                         f"({', '.join(FEATURE_LABELS)}); got {color_by!r}")
    df = _df(con, f"""
        SELECT m.user_id, m.x, m.y, coalesce(s.segment_id, -1) AS segment_id,
               coalesce(i.name, 'Unassigned') AS segment,
               f.frequency, f.monetary, f.recency_days, f.n_events {extra}
        FROM user_map m
        LEFT JOIN {L.members} s ON s.run_id = m.run_id AND s.user_id = m.user_id
        LEFT JOIN {L.info} i ON i.run_id = m.run_id AND i.segment_id = s.segment_id
        LEFT JOIN user_features f ON f.run_id = m.run_id AND f.user_id = m.user_id
        {join}
        WHERE m.run_id = ?{cond}
        ORDER BY hash(m.user_id), m.user_id
        LIMIT ?""", [*params, run_id, *sparams, int(max_points)])
    if grouping == "theme":
        themes = theme_colors(con, run_id)
        df["group_id"] = df["group"].map(lambda g: themes.get(g, (-1, UNASSIGNED_COLOR))[0])
        df["group_color"] = df["group"].map(lambda g: themes.get(g, (-1, UNASSIGNED_COLOR))[1])
    return df, total


def theme_colors(con, run_id: int) -> dict[str, tuple[int, str]]:
    """Each theme label's (theme id, colour): a fixed palette by theme id."""
    if not table_exists(con, "theme_info"):
        return {}
    rows = con.execute("SELECT theme_id, label FROM theme_info WHERE run_id = ? ORDER BY theme_id",
                       [run_id]).fetchall()
    return {label: (int(tid), FALLBACK_COLORS[int(tid) % len(FALLBACK_COLORS)])
            for tid, label in rows}


def _points_in_polygon(x: np.ndarray, y: np.ndarray, px: Sequence[float], py: Sequence[float]) -> np.ndarray:
    """Even-odd rule point-in-polygon, vectorised over the points."""
    px = np.asarray(px, dtype=float)
    py = np.asarray(py, dtype=float)
    inside = np.zeros(len(x), dtype=bool)
    j = len(px) - 1
    for i in range(len(px)):
        xi, yi, xj, yj = px[i], py[i], px[j], py[j]
        crosses = (yi > y) != (yj > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xcross = (xj - xi) * (y - yi) / (yj - yi) + xi
        inside ^= crosses & (x < xcross)
        j = i
    return inside


def users_in_region(con, run_id: int, *, box: dict | None = None, lasso: dict | None = None,
                    scope=None) -> list[str]:
    """Every user on the map (in the scope) inside a box ({x: [x0, x1], y: [y0, y1]}) or lasso
    ({x: [...], y: [...]} polygon) drawn on it, sampled or not. Sorted user ids."""
    cond, sparams = scope_filter("user_id", run_id, scope)
    if box:
        x0, x1 = sorted(float(v) for v in box["x"])
        y0, y1 = sorted(float(v) for v in box["y"])
        rows = con.execute(
            f"SELECT user_id FROM user_map WHERE run_id = ? AND x BETWEEN ? AND ? "
            f"AND y BETWEEN ? AND ?{cond} ORDER BY user_id",
            [run_id, x0, x1, y0, y1, *sparams]).fetchall()
        return [r[0] for r in rows]
    if lasso:
        xs, ys = list(map(float, lasso["x"])), list(map(float, lasso["y"]))
        if len(xs) < 3:
            return []
        df = _df(con, f"SELECT user_id, x, y FROM user_map WHERE run_id = ? AND x BETWEEN ? AND ? "
                      f"AND y BETWEEN ? AND ?{cond} ORDER BY user_id",
                 [run_id, min(xs), max(xs), min(ys), max(ys), *sparams])
        mask = _points_in_polygon(df["x"].to_numpy(), df["y"].to_numpy(), xs, ys)
        return df["user_id"][mask].tolist()
    return []


def selection_user_ids(con, run_id: int, selection: dict | None, *, sampled: bool,
                       scope=None) -> list[str]:
    """Turn a Plotly selection event (st.plotly_chart(on_select=...)) into user ids.

    When the map shows every user, the selected points' customdata (their user ids) are exact.
    When it shows a sample, the drawn box or lasso is applied to every user (in the scope)
    instead, so the selection holds the users hidden by sampling too.
    """
    if not selection:
        return []
    sel = selection.get("selection", selection)
    boxes, lassos, points = sel.get("box") or [], sel.get("lasso") or [], sel.get("points") or []
    if sampled and (boxes or lassos):
        ids: set[str] = set()
        for b in boxes:
            ids.update(users_in_region(con, run_id, box=b, scope=scope))
        for poly in lassos:
            ids.update(users_in_region(con, run_id, lasso=poly, scope=scope))
        return sorted(ids)
    ids = set()
    for p in points:
        cd = p.get("customdata")
        if isinstance(cd, (list, tuple)):
            cd = cd[0] if cd else None
        if cd is not None:
            ids.add(str(cd))
    return sorted(ids)


def has_prediction(con, run_id: int, score: str) -> bool:
    """Whether the build scored shoppers on ``score`` (core.predictions)."""
    if not table_exists(con, "predictions"):
        return False
    return bool(con.execute("SELECT count(*) FROM (SELECT 1 FROM predictions WHERE run_id = ? AND "
                            "score = ? LIMIT 1)", [run_id, score]).fetchone()[0])
