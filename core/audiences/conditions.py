"""The conditions a segment definition is built from, one class per kind, registered in one place.

A definition is JSON data, never SQL: each condition is a dict with a ``kind`` and its fields,
validated here and turned into a parameterised ``SELECT user_id ...`` (values reach DuckDB only as
parameters; column and attribute names are checked against what the store has).

    {"kind": "feature", "feature": "frequency", "op": ">=", "value": 3}
    {"kind": "attribute", "attribute": "country", "values": ["France", "Germany"]}
    {"kind": "activity", "action": "bought", "theme": 4, "within_days": 30}
    {"kind": "like", "phrase": "christmas lights", "items": [...matched ids, shown...]}
    {"kind": "segment", "lens": "taste", "segment_id": 2}
    {"kind": "prediction", "score": "purchase", "top_percent": 20}
    {"kind": "selection", "user_ids": ["12345", ...]}        (a map selection)
    {"kind": "saved", "saved_id": 3}                         (another saved segment)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.store.schema import LENS_TABLES


class DefinitionError(ValueError):
    pass


@dataclass
class Context:
    con: object
    run_id: int
    currency: str = "£"


OPS = {">=": ">=", "<=": "<=", ">": ">", "<": "<", "=": "=", "!=": "<>"}
ACTIONS = {"bought": ("purchase",), "viewed": ("view", "click"), "carted": ("cart",),
           "favourited": ("favorite",), "returned": ("return",), "reviewed": ("review",),
           "any": ("view", "click", "cart", "purchase", "favorite", "review", "return")}
FEATURE_WORDS = {"recency_days": "days since the last order", "frequency": "orders",
                 "monetary": "net spend", "avg_order_value": "average order value (before returns)",
                 "tenure_days": "days as a shopper", "return_rate": "share of units returned",
                 "basket_size": "items per order", "evening_share": "share of activity in the evening",
                 "weekend_share": "share of activity at weekends", "n_events": "interactions",
                 "n_items": "different items", "holiday_share": "share bought in Nov-Dec",
                 "views_per_purchase": "views per purchase", "diversity": "category variety",
                 "price_sensitivity": "price paid vs usual (log)", "mean_hour": "average hour"}
SCORE_WORDS = {"purchase": "likely to buy", "goal": "likely to buy the goal",
               "churn": "likely to churn", "value": "predicted spend"}


def _need(d: dict, key: str, kind: str):
    if key not in d or d[key] in (None, "", []):
        raise DefinitionError(f"A '{kind}' condition needs '{key}'.")
    return d[key]


def _number(v, what: str) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise DefinitionError(f"{what} must be a number (got {v!r}).") from None
    if x != x or x in (float("inf"), float("-inf")):
        raise DefinitionError(f"{what} must be a finite number (got {v!r}).")
    return x


class Condition:
    kind = ""

    def __init__(self, d: dict):
        self.d = d

    def sql(self, ctx: Context) -> tuple[str, list]:
        raise NotImplementedError

    def words(self) -> str:
        raise NotImplementedError


class Feature(Condition):
    kind = "feature"

    def sql(self, ctx):
        col = _need(self.d, "feature", self.kind)
        cols = {r[0] for r in ctx.con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
            "AND table_name = 'user_features'").fetchall()} - {"run_id", "user_id"}
        if col not in cols:
            raise DefinitionError(f"Unknown shopper figure {col!r}; use one of "
                                  f"{', '.join(sorted(cols))}.")
        op = OPS.get(self.d.get("op", ">="))
        if op is None:
            raise DefinitionError(f"Unknown comparison {self.d.get('op')!r}; use {', '.join(OPS)}.")
        v = _number(_need(self.d, "value", self.kind), col)
        return f'SELECT user_id FROM user_features WHERE run_id = ? AND "{col}" {op} ?', [ctx.run_id, v]

    def words(self):
        f = self.d.get("feature")
        return f"{FEATURE_WORDS.get(f, f)} {self.d.get('op', '>=')} {self.d.get('value'):g}"


class Attribute(Condition):
    kind = "attribute"

    def sql(self, ctx):
        key = str(_need(self.d, "attribute", self.kind))
        if not re.fullmatch(r"[A-Za-z0-9_ .-]{1,64}", key):
            raise DefinitionError(f"Attribute names are letters, digits, spaces, '_', '-' or '.' "
                                  f"(got {key!r}).")
        vals = [str(v) for v in _need(self.d, "values", self.kind)]
        return ("SELECT DISTINCT user_id FROM users WHERE json_extract_string(attributes, ?) "
                "IN (SELECT unnest(?::VARCHAR[]))", [f'$."{key}"', vals])

    def words(self):
        return f"{self.d.get('attribute')} is {' or '.join(map(str, self.d.get('values', [])))}"


class Activity(Condition):
    kind = "activity"

    def sql(self, ctx):
        action = self.d.get("action", "bought")
        if action not in ACTIONS:
            raise DefinitionError(f"Unknown action {action!r}; use {', '.join(ACTIONS)}.")
        q = ["SELECT DISTINCT user_id FROM events WHERE user_id IS NOT NULL",
             "AND list_contains(?, event_type)"]
        p: list = [list(ACTIONS[action])]
        if self.d.get("within_days") is not None:
            days = _number(self.d["within_days"], "within_days")
            if days <= 0:
                raise DefinitionError("within_days must be more than 0.")
            q.append("AND ts >= (SELECT max(ts) FROM events) - to_seconds(?)")
            p.append(days * 86400.0)
        if self.d.get("items"):
            q.append("AND list_contains(?, item_id)")
            p.append([str(i) for i in self.d["items"]])
        if self.d.get("theme") is not None:
            q.append("AND item_id IN (SELECT item_id FROM item_themes WHERE run_id = ? "
                     "AND theme_id = ?)")
            p += [ctx.run_id, int(_number(self.d["theme"], "theme"))]
        if self.d.get("category"):
            q.append("AND item_id IN (SELECT item_id FROM items WHERE list_contains(list_transform("
                     "string_split(replace(coalesce(category_path, ''), ' > ', '|'), '|'), "
                     "lambda x: lower(trim(x))), lower(?)))")
            p.append(str(self.d["category"]))
        return " ".join(q), p

    def words(self):
        what = ("anything" if not any(self.d.get(k) is not None for k in ("items", "theme", "category"))
                else f"theme {self.d.get('theme_label') or self.d.get('theme')}"
                if self.d.get("theme") is not None
                else f"from {self.d['category']}" if self.d.get("category")
                else f"{len(self.d['items'])} chosen item(s)")
        when = f" in the last {self.d['within_days']:g} days" if self.d.get("within_days") else ""
        return f"{self.d.get('action', 'bought')} {what}{when}"


class Like(Activity):
    """'Bought anything like <phrase>': the phrase is matched against item texts with the text
    model when the condition is made (``core.audiences.like.match_items``); the matched items are
    kept in the definition, shown to the user and used from then on."""
    kind = "like"

    def sql(self, ctx):
        _need(self.d, "items", self.kind)
        return Activity({**self.d, "action": self.d.get("action", "bought")}).sql(ctx)

    def words(self):
        when = f" in the last {self.d['within_days']:g} days" if self.d.get("within_days") else ""
        return (f"{self.d.get('action', 'bought')} anything like '{self.d.get('phrase')}' "
                f"({len(self.d.get('items', []))} items){when}")


class Segment(Condition):
    kind = "segment"

    def sql(self, ctx):
        lens = self.d.get("lens", "taste")
        if lens not in LENS_TABLES:
            raise DefinitionError(f"Unknown lens {lens!r}; use {', '.join(LENS_TABLES)}.")
        sid = int(_number(_need(self.d, "segment_id", self.kind), "segment_id"))
        return (f"SELECT user_id FROM {LENS_TABLES[lens][0]} WHERE run_id = ? AND segment_id = ?",
                [ctx.run_id, sid])

    def words(self):
        return f"in {self.d.get('lens', 'taste')} segment '{self.d.get('name', self.d.get('segment_id'))}'"


class Prediction(Condition):
    kind = "prediction"

    def sql(self, ctx):
        score = _need(self.d, "score", self.kind)
        if score not in SCORE_WORDS:
            raise DefinitionError(f"Unknown score {score!r}; use {', '.join(SCORE_WORDS)}.")
        if self.d.get("top_percent") is not None:
            pct = _number(self.d["top_percent"], "top_percent")
            if not 0 < pct <= 100:
                raise DefinitionError("top_percent must be between 0 and 100.")
            return ("SELECT user_id FROM predictions WHERE run_id = ? AND score = ? AND "
                    "percentile > ?", [ctx.run_id, score, 100.0 - pct])
        v = _number(_need(self.d, "min_value", self.kind), "min_value")
        return ("SELECT user_id FROM predictions WHERE run_id = ? AND score = ? AND value >= ?",
                [ctx.run_id, score, v])

    def words(self):
        s = SCORE_WORDS.get(self.d.get("score"), self.d.get("score"))
        if self.d.get("top_percent") is not None:
            return f"top {self.d['top_percent']:g}% {s}"
        return f"{s} at least {self.d.get('min_value')}"


class Selection(Condition):
    kind = "selection"

    def sql(self, ctx):
        ids = [str(u) for u in _need(self.d, "user_ids", self.kind)]
        return "SELECT unnest(?::VARCHAR[]) AS user_id", [ids]

    def words(self):
        return f"one of {len(self.d.get('user_ids', [])):,} selected shoppers"


class Saved(Condition):
    kind = "saved"

    def sql(self, ctx):
        sid = int(_number(_need(self.d, "saved_id", self.kind), "saved_id"))
        return "SELECT user_id FROM records.saved_segment_members WHERE saved_id = ?", [sid]

    def words(self):
        return f"in saved segment '{self.d.get('name', self.d.get('saved_id'))}'"


# The one place condition kinds are registered.
KINDS: dict[str, type[Condition]] = {c.kind: c for c in (
    Feature, Attribute, Activity, Like, Segment, Prediction, Selection, Saved)}


def condition(d: dict) -> Condition:
    if not isinstance(d, dict) or d.get("kind") not in KINDS:
        raise DefinitionError(f"Unknown condition {d!r}: 'kind' must be one of {', '.join(KINDS)}.")
    return KINDS[d["kind"]](d)
