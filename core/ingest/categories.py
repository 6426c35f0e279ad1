"""Category specs in a mapping: one column, a delimited list, flag columns, or a path of columns.

    category = "genre"                                     # one column, kept as written
    category = { column = "genres", split = "|" }          # a list: "Action|Comedy" (any separator)
    category = { flags = ["Action", "Comedy", "Drama"] }   # one 0/1 column per category (named so)
    category = { flags = { "7" = "Action", "8" = "Adventure" } }   # column -> category name
    category = { path = ["department", "aisle"] }          # levels: "frozen > ice cream"

Several categories are stored joined by '|' and levels by ' > ' (``items.category_path``), the
store's convention (``core.features.compute.CATEGORIES_SQL``). A flag is set when its value is
1, true, yes, y or x (any case); an item with no flag set has no category.
"""

from __future__ import annotations

from core.ingest import parse
from core.ingest.errors import IngestError
from core.ingest.reader import Staged, ident, resolve_column, sql_str

KEYS = ({"column", "split"}, {"flags"}, {"path"})
TRUE = ("1", "1.0", "true", "yes", "y", "x")


def check(spec, source: str, where: str = "[columns]") -> None:
    """Refuse a malformed category spec with the forms that are accepted."""
    if spec is None or isinstance(spec, str):
        return
    ok = isinstance(spec, dict) and (set(spec) in KEYS or set(spec) == {"const"})
    if ok and "flags" in spec:
        f = spec["flags"]
        ok = (isinstance(f, list) and f and all(isinstance(x, (str, int)) for x in f)) or \
             (isinstance(f, dict) and f and all(isinstance(v, str) for v in f.values()))
    if ok and "path" in spec:
        ok = isinstance(spec["path"], list) and len(spec["path"]) > 0
    if ok and "split" in spec:
        ok = isinstance(spec["split"], str) and spec["split"] != "" and isinstance(spec["column"], (str, int))
    if not ok:
        raise IngestError(
            f"{source}: {where} category must be a column name, {{ column = \"genres\", split = "
            f"\"|\" }}, {{ flags = [\"Action\", \"Comedy\"] }} (or {{ flags = {{ \"7\" = "
            f"\"Action\" }} }}), or {{ path = [\"department\", \"aisle\"] }}; not {spec!r}.")


def is_composite(spec) -> bool:
    return isinstance(spec, dict) and "const" not in spec


def sql(spec: dict, staged: Staged, purpose: str, fix: str) -> str:
    """SQL over the staged columns giving the category path (NULL when there is none)."""
    col = lambda name: ident(resolve_column(str(name), staged.columns, staged.path,  # noqa: E731
                                            purpose=purpose, fix=fix))
    if "split" in spec:
        c = col(spec["column"])
        parts = (f"list_filter(list_transform(string_split({parse.text(c)}, {sql_str(spec['split'])}), "
                 f"lambda s: trim(s)), lambda s: s <> '')")
        first = f"list_filter(p, lambda x, i: list_position(p, x) = i)"  # distinct, in order
        return f"nullif(array_to_string(list_transform([{parts}], lambda p: {first})[1], '|'), '')"
    if "flags" in spec:
        f = spec["flags"]
        pairs = list(f.items()) if isinstance(f, dict) else [(x, str(x)) for x in f]
        true = ", ".join(sql_str(t) for t in TRUE)
        cases = ", ".join(f"CASE WHEN lower(trim({col(c)})) IN ({true}) THEN {sql_str(name)} END"
                          for c, name in pairs)
        return f"nullif(concat_ws('|', {cases}), '')"
    levels = ", ".join(parse.text(col(c)) for c in spec["path"])
    return f"nullif(concat_ws(' > ', {levels}), '')"


def describe(spec) -> str:
    """The spec in words, for the report's mapping."""
    if "split" in spec:
        return f"{spec['column']} split on {spec['split']!r}"
    if "flags" in spec:
        f = spec["flags"]
        names = list(f.values()) if isinstance(f, dict) else [str(x) for x in f]
        return f"{len(names)} flag columns ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
    return "path " + " > ".join(str(c) for c in spec["path"])
