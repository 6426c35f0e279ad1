"""A segment definition: conditions combined with all / any / not, as JSON data.

    {"all": [{"kind": "prediction", "score": "purchase", "top_percent": 20},
             {"not": {"kind": "activity", "action": "bought", "within_days": 30}}]}

``members`` evaluates it on a build: every condition becomes a parameterised SELECT, "all" an
INTERSECT, "any" a UNION and "not" the build's shoppers EXCEPT it. ``describe`` writes it in words.
"""

from __future__ import annotations

import json

from core.audiences.conditions import Context, DefinitionError, condition

MAX_DEPTH = 12


def _compile(node, ctx: Context, depth: int = 0) -> tuple[str, list]:
    if depth > MAX_DEPTH:
        raise DefinitionError(f"The definition nests deeper than {MAX_DEPTH} levels.")
    if isinstance(node, dict) and ("all" in node or "any" in node):
        key = "all" if "all" in node else "any"
        parts = node[key]
        if not isinstance(parts, list) or not parts:
            raise DefinitionError(f"'{key}' needs a non-empty list of conditions.")
        sqls, params = [], []
        for p in parts:
            s, ps = _compile(p, ctx, depth + 1)
            sqls.append(f"({s})")
            params += ps
        return (" INTERSECT " if key == "all" else " UNION ").join(sqls), params
    if isinstance(node, dict) and "not" in node:
        s, ps = _compile(node["not"], ctx, depth + 1)
        return (f"(SELECT user_id FROM user_features WHERE run_id = ?) EXCEPT ({s})",
                [ctx.run_id, *ps])
    return condition(node).sql(ctx)


def parse(definition) -> dict:
    """A definition from JSON text or a dict; raises DefinitionError with the reason."""
    if isinstance(definition, str):
        try:
            definition = json.loads(definition)
        except json.JSONDecodeError as e:
            raise DefinitionError(f"The definition is not valid JSON: {e}") from None
    if not isinstance(definition, dict) or not definition:
        raise DefinitionError("A definition is a JSON object: a condition, or all/any/not of them.")
    return definition


def members(con, run_id: int, definition) -> list[str]:
    """The shoppers of the build ``run_id`` who meet the definition (sorted ids)."""
    d = parse(definition)
    sql, params = _compile(d, Context(con, run_id))
    # only shoppers of this build, whatever the conditions read
    rows = con.execute(f"SELECT DISTINCT user_id FROM (({sql}) INTERSECT "
                       "(SELECT user_id FROM user_features WHERE run_id = ?)) ORDER BY 1",
                       [*params, run_id]).fetchall()
    return [str(r[0]) for r in rows]


def count(con, run_id: int, definition) -> int:
    return len(members(con, run_id, definition))


def describe(definition) -> str:
    """The definition in words, e.g. "top 20% likely to buy and not (bought anything in the
    last 30 days)"."""
    d = parse(definition)

    def words(node, top=False) -> str:
        if "all" in node or "any" in node:
            key = "all" if "all" in node else "any"
            inner = f" {'and' if key == 'all' else 'or'} ".join(words(p) for p in node[key])
            return inner if top else f"({inner})"
        if "not" in node:
            return f"not {words(node['not'])}"
        return condition(node).words()

    return words(d, top=True)
