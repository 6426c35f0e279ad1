"""Side files loaded with an ingest: an item catalogue (--items) and shopper attributes (--users).

Columns are taken from [items] / [users] in the mapping file, else guessed from common names.
"""

from __future__ import annotations

from core.ingest import categories, parse
from core.ingest.checks import plausible_price
from core.ingest.formats import Plan, single_id_column
from core.ingest.reader import (IngestError, Staged, find_column, ident, no_header_hint,
                                resolve_column)

ITEM_ROLES = {
    "id": ["item_id", "id", "product_id", "sku", "stockcode", "item"],
    "title": ["title", "name", "product_name", "description"],
    "description": ["description", "details", "long_description"],
    # several categories joined by '|' (MovieLens' "Adventure|Animation") are the store's own
    # convention for an item in several categories
    "category": ["category", "category_path", "category_code", "category_name", "genres",
                 "genre"],
    "brand": ["brand", "manufacturer"],
    "price": ["price", "unit_price", "list_price"],
}


def items_file_plan(staged: Staged, opts: dict) -> Plan:
    """An item catalogue: id (required), title, description, category, brand, price.

    Columns are taken from [items] in the mapping file, else guessed from common names. A
    category with '/' or '.' separators is kept as written. Quarantined: a missing id, a price
    that is not a number, a second row for an id already seen (the first row is kept).
    """
    cols = opts.get("items_columns") or {}
    src = {}
    category_sql = None
    for role, guesses in ITEM_ROLES.items():
        if role == "id":
            guesses = _id_guesses(staged.columns, opts.get("events_item_column"))
        if role == "category" and categories.is_composite(cols.get(role)):
            category_sql = categories.sql(cols[role], staged, "items category",
                                          "Fix [items] in the mapping file.")
            continue
        if cols.get(role):
            src[role] = ident(resolve_column(str(cols[role]), staged.columns, staged.path,
                                             purpose=f"items {role}", fix="Fix [items] in the mapping file."))
        else:
            g = find_column(guesses, staged.columns)
            if g is not None and ident(g) not in src.values():
                src[role] = ident(g)
    if "id" not in src:
        raise IngestError(f"{staged.path}: no item id column. Columns found: "
                          f"{', '.join(staged.columns)}. Name it item_id, or set id = \"COLUMN\" "
                          f"under [items] in the mapping file."
                          f"{no_header_hint(staged.columns)}")
    g = lambda r, conv=parse.text: conv(src[r]) if r in src else "NULL"  # noqa: E731
    fields = {"__item_id": g("id"), "__title": g("title"), "__description": g("description"),
              "__category": category_sql or g("category"), "__brand": g("brand"), "__price": g("price", parse.number)}
    n = lambda r: src[r].strip('"')  # noqa: E731
    checks = [("__item_id IS NULL", n("id"), "missing item id")]
    if "price" in src:
        checks.append((f"{parse.text(src['price'])} IS NOT NULL AND __price IS NULL", n("price"),
                       "price is not a number"))
        checks += plausible_price("__price", n("price"))
    return Plan(fields=fields, checks=checks, mapping={r: n(r) for r in src})


def _id_guesses(columns: list[str], events_item: str | None) -> list[str]:
    """Where to look for the catalogue's item id: the events file's own item column (MovieLens'
    ratings and movies both say "movieId"), the common names, then the one column named like
    an id (e.g. "movie_id") where there is only one that is not a shopper's."""
    single = single_id_column(columns)
    return ([events_item] if events_item else []) + ITEM_ROLES["id"] + \
        ([single] if single else [])


def users_file_plan(staged: Staged, opts: dict) -> Plan:
    """Shopper attributes: an id column (required); every other column becomes an attribute."""
    cols = opts.get("users_columns") or {}
    if cols.get("id"):
        uid = resolve_column(str(cols["id"]), staged.columns, staged.path, purpose="users id",
                             fix="Fix [users] in the mapping file.")
    else:
        uid = find_column(["user_id", "id", "customer_id", "customerid", "user"], staged.columns)
        if uid is None:
            raise IngestError(f"{staged.path}: no user id column. Columns found: "
                              f"{', '.join(staged.columns)}. Name it user_id, or set id = \"COLUMN\" "
                              f"under [users] in the mapping file."
                              f"{no_header_hint(staged.columns)}")
    attrs = {c: parse.text(ident(c)) for c in staged.columns if c != uid}
    return Plan(
        fields={"__user_id": f"regexp_replace({parse.text(ident(uid))}, '\\.0+$', '')"},
        checks=[("__user_id IS NULL", uid, "missing user id")],
        user_attrs=attrs, mapping={"id": uid},
    )
