"""Describing a lens's segments: sizes, shares, medians, qualifying traits, colour, name, text.

``describe_segments(con, run_id, lens=...)`` reads the lens's membership table, ``user_features``,
``user_shares``, the lifecycle stages, ``events``, ``items`` and the item themes of a run, and
writes the lens's info and traits tables. Traits are computed and qualified by
``core.segments.traits``; names and descriptions come from ``core.segments.naming``, only from
qualifying traits, the lifecycle lens and medians that clear stated margins.

Colours: taste segments take a fixed qualitative palette by segment id (ids are ordered by size),
grey for unassigned (-1); lifecycle stages have fixed colours of their own. A segment has the
same colour on every page.
"""

from __future__ import annotations

import json
import time

from core.store.schema import store_currency  # noqa: F401  (callers import it from here too)
from core.progress import NULL, Progress
from core.segments import naming
from core.segments.lenses import lens as get_lens
from core.segments.lifecycle import STAGE_KEY
from core.segments.traits import write_traits

# Vega/Tableau 10 without its grey, then Tableau 20's other tones: distinct, colour-blind aware.
PALETTE = [
    "#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#EECA3B", "#FF9DA6",
    "#9D755D", "#1F77B4", "#2CA02C", "#D62728", "#9467BD", "#8C564B", "#17BECF", "#BCBD22",
    "#AEC7E8", "#FFBB78", "#98DF8A", "#C5B0D5",
]
UNASSIGNED_COLOR = "#9aa0a6"
UNASSIGNED_NAME = naming.UNASSIGNED_NAME
MEDIAN_FEATURES = ["frequency", "monetary", "avg_order_value", "recency_days", "evening_share",
                   "weekend_share", "basket_size", "price_sensitivity", "holiday_share",
                   "return_rate", "views_per_purchase", "diversity", "n_events",
                   "rating_vs_shop"]


def segment_color(segment_id: int) -> str:
    """A taste segment's colour on every page: palette by id, grey for unassigned (-1)."""
    sid = int(segment_id)
    return UNASSIGNED_COLOR if sid < 0 else PALETTE[sid % len(PALETTE)]


def describe_segments(con, run_id: int, progress: Progress = NULL, *, lens: str = "taste",
                      currency: str | None = None, n_representatives: int = 5,
                      top_n: int = 25) -> dict:
    """Write a lens's traits and info rows for run ``run_id``; return metrics
    {n_segments, names, name_sources, n_traits, n_candidates, seconds}."""
    t0 = time.perf_counter()
    run_id = int(run_id)
    L = get_lens(lens)
    cur = currency or store_currency(con)
    n_users = con.execute(f"SELECT count(*) FROM {L.members} WHERE run_id = ?",
                          [run_id]).fetchall()[0][0]
    if not n_users:
        raise RuntimeError(f"Run {run_id} has no rows in `{L.members}`: assign the {L.name} "
                           "segments first (`segstudio build` does).")
    with progress.stage(f"Describing {L.label.lower()} segments", total=3) as bar:
        cand = write_traits(con, run_id, L, top_n=top_n)
        bar.advance(1)
        info = _basic_info(con, run_id, L, n_representatives)
        med, shop = _medians(con, run_id, L)
        hours = _hours(con, run_id, L)
        mix, shop_mix = _lifecycle_mix(con, run_id, L)
        traits = _traits(con, run_id, L)
        shop_flags = _shop_flags(con)
        title_df, n_titles = _title_frequencies(con)
        item_themes = _item_themes(con, run_id)
        bar.advance(1)
        rules = dict(con.execute(f"SELECT segment_id, rule FROM {L.info} WHERE run_id = ?",
                                 [run_id]).fetchall()) if L.name == "lifecycle" else {}
        rows = []
        for sid, row in info.items():
            t = traits.get(sid, [])
            if L.name == "lifecycle":
                base, source, quals = None, "lifecycle rule", []
            elif sid < 0:
                base, source, quals = UNASSIGNED_NAME, "noise", []
            else:
                base, source, quals = naming.taste_name(
                    t, med.get(sid, {}), shop, mix.get(sid, {}), shop_mix,
                    no_prices=not shop_flags["has_prices"], title_df=title_df,
                    n_titles=n_titles, item_themes=item_themes,
                    no_purchases=not shop_flags["has_purchases"])
            desc = naming.describe(
                row, t, med.get(sid, {}), {} if L.name == "lifecycle" else mix.get(sid, {}),
                hours.get(sid, {}), currency=cur, rule=rules.get(sid), **shop_flags)
            if sid < 0:
                desc = "Shoppers in no dense group (DBSCAN noise): unusual profiles. " + desc
            rows.append({**row, "base_name": base, "source": source, "qualifiers": quals,
                         "description": desc, "facts": {"medians": med.get(sid, {}),
                                                        "lifecycle_mix": mix.get(sid, {}),
                                                        "name_from": source}})
        _write_info(con, run_id, L, rows)
        bar.advance(1)
    names = dict(con.execute(f"SELECT segment_id, name FROM {L.info} WHERE run_id = ? "
                             "ORDER BY segment_id", [run_id]).fetchall())
    return {
        "lens": L.name,
        "n_segments": sum(1 for r in rows if r["segment_id"] >= 0),
        "names": names,
        "name_sources": {r["segment_id"]: r["source"] for r in rows},
        "n_traits": int(sum(len(v) for v in traits.values())),
        "n_candidates": int(len(cand)),
        "seconds": round(time.perf_counter() - t0, 3),
    }


def _write_info(con, run_id: int, L, rows: list[dict]) -> None:
    if L.name == "lifecycle":
        for r in rows:
            con.execute(
                f"""UPDATE {L.info} SET description = ?, size = ?, user_share = ?,
                    revenue_share = ?, recency_median = ?, frequency_median = ?,
                    monetary_median = ?, representative_users = ?, facts = ?
                    WHERE run_id = ? AND segment_id = ?""",
                [r["description"], r["size"], r["user_share"], r["revenue_share"],
                 r["recency_median"], r["frequency_median"], r["monetary_median"],
                 r["representative_users"], json.dumps(r["facts"], default=str), run_id,
                 r["segment_id"]])
        return
    names = naming.distinct_names([r for r in rows if r["segment_id"] >= 0])
    names[-1] = UNASSIGNED_NAME
    con.execute(f"DELETE FROM {L.info} WHERE run_id = ?", [run_id])
    con.executemany(
        f"""INSERT INTO {L.info} (run_id, segment_id, name, description, color, size, user_share,
            revenue_share, recency_median, frequency_median, monetary_median,
            representative_users, facts, position)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [[run_id, r["segment_id"], names[r["segment_id"]], r["description"],
          segment_color(r["segment_id"]), r["size"], r["user_share"], r["revenue_share"],
          r["recency_median"], r["frequency_median"], r["monetary_median"],
          r["representative_users"], json.dumps(r["facts"], default=str), r["segment_id"]]
         for r in rows])


def _basic_info(con, run_id: int, L, n_rep: int) -> dict[int, dict]:
    rows = con.execute(
        f"""
        WITH seg AS (SELECT * FROM {L.members} WHERE run_id = $run),
        f AS (SELECT * FROM user_features WHERE run_id = $run),
        j AS (SELECT seg.segment_id, seg.user_id, seg.distance, f.recency_days, f.frequency,
                     f.monetary
              FROM seg LEFT JOIN f USING (user_id)),
        tot AS (SELECT count(*) AS n, sum(monetary) AS revenue FROM j),
        reps AS (
            SELECT segment_id, list(user_id ORDER BY distance NULLS LAST, user_id) AS users
            FROM (SELECT segment_id, user_id, distance FROM seg
                  QUALIFY row_number() OVER (PARTITION BY segment_id
                                             ORDER BY distance NULLS LAST, user_id) <= $k)
            GROUP BY segment_id
        )
        SELECT j.segment_id, count(*) AS size, count(*) / any_value(tot.n) AS user_share,
               CASE WHEN any_value(tot.revenue) > 0
                    THEN coalesce(sum(j.monetary), 0) / any_value(tot.revenue) END AS revenue_share,
               median(j.recency_days), median(j.frequency), median(j.monetary),
               any_value(reps.users)
        FROM j CROSS JOIN tot LEFT JOIN reps ON reps.segment_id = j.segment_id
        GROUP BY j.segment_id ORDER BY j.segment_id
        """,
        {"run": run_id, "k": int(n_rep)},
    ).fetchall()
    keys = ["segment_id", "size", "user_share", "revenue_share", "recency_median",
            "frequency_median", "monetary_median", "representative_users"]
    out = {}
    for r in rows:
        d = dict(zip(keys, r))
        d["segment_id"] = int(d["segment_id"])
        d["representative_users"] = list(d["representative_users"] or [])
        out[d["segment_id"]] = d
    return out


def _medians(con, run_id: int, L) -> tuple[dict[int, dict], dict]:
    have = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'user_features'"
    ).fetchall()}
    cols = [c for c in MEDIAN_FEATURES if c in have]
    sel = ", ".join(f"median(f.{c}) AS {c}" for c in cols)
    seg = con.execute(
        f"SELECT s.segment_id, {sel} FROM {L.members} s JOIN user_features f "
        f"ON f.run_id = s.run_id AND f.user_id = s.user_id WHERE s.run_id = ? GROUP BY 1",
        [run_id]).fetchall()
    shop = con.execute(f"SELECT {sel} FROM user_features f WHERE f.run_id = ?",
                       [run_id]).fetchall()[0]
    return ({int(r[0]): dict(zip(cols, r[1:])) for r in seg}, dict(zip(cols, shop)))


def _hours(con, run_id: int, L) -> dict[int, dict[str, float]]:
    out: dict[int, dict[str, float]] = {}
    for sid, hour, share in con.execute(
        f"""SELECT s.segment_id, u.value, sum(u.share) FROM user_shares u
            JOIN {L.members} s ON s.run_id = u.run_id AND s.user_id = u.user_id
            WHERE u.run_id = ? AND u.dimension = 'hour' GROUP BY ALL""", [run_id]
    ).fetchall():
        out.setdefault(int(sid), {})[hour] = float(share)
    return out


def _lifecycle_mix(con, run_id: int, L) -> tuple[dict[int, dict[str, float]], dict[str, float]]:
    """Per segment of the lens: share of members in each lifecycle stage; and the shop's."""
    if L.name == "lifecycle":
        return {}, {}
    rows = con.execute(
        f"""SELECT s.segment_id, l.segment_id, count(*) FROM {L.members} s
            JOIN lifecycle_segments l ON l.run_id = s.run_id AND l.user_id = s.user_id
            WHERE s.run_id = ? GROUP BY ALL""", [run_id]).fetchall()
    seg: dict[int, dict[str, float]] = {}
    shop: dict[str, float] = {}
    for sid, stage, n in rows:
        key = STAGE_KEY[int(stage)]
        seg.setdefault(int(sid), {})[key] = float(n)
        shop[key] = shop.get(key, 0.0) + float(n)
    tot = sum(shop.values()) or 1.0
    for d in seg.values():
        t = sum(d.values()) or 1.0
        for k in d:
            d[k] /= t
    return seg, {k: v / tot for k, v in shop.items()}


def _traits(con, run_id: int, L) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    cols = ["segment_id", "dimension", "value", "support", "population_support", "lift",
            "members", "p_value", "label"]
    for r in con.execute(f"SELECT {', '.join(cols)} FROM {L.traits} WHERE run_id = ? "
                         "ORDER BY segment_id, dimension, lift DESC", [run_id]).fetchall():
        d = dict(zip(cols, r))
        out.setdefault(int(d["segment_id"]), []).append(d)
    return out


def _title_frequencies(con) -> tuple[dict[str, int], int]:
    """How many catalogue titles contain each title term (for ``naming.item_word``)."""
    from collections import Counter

    from core.themes.label import terms

    titles = [r[0] for r in con.execute(
        "SELECT any_value(title) FROM items WHERE title IS NOT NULL GROUP BY item_id").fetchall()]
    df: Counter = Counter()
    for t in titles:
        df.update(set(terms(t)))
    return dict(df), len(titles)


def _item_themes(con, run_id: int) -> dict[str, str]:
    """Item id -> its theme's label, for the run's named themes (mixed ones left out)."""
    from core.themes.label import MIXED

    return dict(con.execute(
        "SELECT t.item_id, i.label FROM item_themes t JOIN theme_info i USING (run_id, theme_id) "
        "WHERE t.run_id = ? AND NOT starts_with(i.label, ?)", [int(run_id), MIXED]).fetchall())


def _shop_flags(con) -> dict:
    has_prices, has_purchases = con.execute(
        "SELECT count(*) FILTER (event_type = 'purchase' AND unit_price > 0) > 0, "
        "count(*) FILTER (event_type = 'purchase') > 0 FROM events").fetchall()[0]
    return {"has_prices": bool(has_prices), "has_purchases": bool(has_purchases)}
