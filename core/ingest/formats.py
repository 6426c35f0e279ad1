"""The input formats: how a staged file's text columns become events, items and users.

Each format turns the staged columns into a ``Plan``: SQL expressions for the canonical fields
(``__user_id``, ``__item_id``, ``__type``, ``__ts``, ``__qty``, ``__price``, ``__basket``,
``__session`` and item/user attributes) plus ordered ``checks``. A row fails the first check that
is true and goes to the quarantine table with that check's column and reason; every other row is
loaded. The product decisions per format are documented on each ``*_plan`` function.

Exact duplicates (every source column equal) are skipped and counted for every format except
``baskets``, where two identical lines are two shoppers who bought the same things.

Shared checks (missing or unparseable values, dates outside the accepted window, non-finite or
absurd numbers) are in ``core.ingest.checks``; the --items / --users side files in
``core.ingest.sidefiles``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.ingest import categories, parse
from core.ingest.checks import missing_or_bad, plausible_price, plausible_qty, plausible_time
from core.ingest.reader import (IngestError, Staged, find_column, ident, no_header_hint,
                                resolve_column, sql_str)

FORMATS = ("online-retail", "clickstream", "baskets", "events")

FIELDS = ("__user_id", "__item_id", "__type", "__ts", "__qty", "__price", "__basket", "__session",
          "__title", "__description", "__category", "__brand", "__rating", "__review")


@dataclass
class Plan:
    fields: dict[str, str]                       # canonical field -> SQL over the raw columns
    checks: list[tuple[str, str, str]]           # (condition, column_name, reason), first wins
    dedup: bool = True
    revenue: str | None = None                   # SQL over raw columns, for the revenue check
    revenue_types: tuple[str, ...] | None = None  # only these loaded event types carry revenue
    user_attrs: dict[str, str] = field(default_factory=dict)  # JSON key -> SQL over raw columns
    baskets: bool = False                        # __items is a list: one event per label
    notes: list[str] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)     # role -> source column, for reports
    sources: dict[str, str] = field(default_factory=dict)     # time/quantity/price -> source column

    def field_sql(self) -> str:
        f = {k: "NULL" for k in FIELDS}
        f.update(self.fields)
        return ",\n".join(f"{expr} AS {name}" for name, expr in f.items())


def _col(staged: Staged, name: str, fmt: str, fix: str | None = None) -> str:
    found = resolve_column(
        name, staged.columns, staged.path, purpose=f"required by --format {fmt}",
        fix=fix or (f"Check that the file really is in the {fmt} layout; if it is, rename the "
                    f"column in the file, otherwise load it with --format events and say which "
                    f"column is which (--item-col, --user-col, ...)."),
    )
    return ident(found)


# Online Retail StockCodes that are not products: postage (POST, DOT, C2 carriage), fees
# (AMAZONFEE, BANK CHARGES, CRUK commission), discounts (D), manual adjustments (M), samples (S)
# and bad-debt adjustments (B).
SERVICE_CODES = ("POST", "DOT", "C2", "AMAZONFEE", "BANK CHARGES", "CRUK", "D", "M", "S", "B")


def online_retail_plan(staged: Staged, opts: dict) -> Plan:
    """UCI Online Retail: one row per invoice line.

    Mapping: InvoiceNo -> basket_id; StockCode -> item_id; Description -> item title (the most
    frequent description of the code among loaded rows); UnitPrice -> unit_price and the item's
    price (median over loaded rows); CustomerID '17850.0' -> user '17850' (a missing CustomerID
    loads with user_id NULL: the row counts for items and baskets, not for shopper profiles);
    Country -> users.attributes.country (the customer's most frequent country). Invoices starting
    with 'C' are cancellations: event_type 'return', Quantity kept negative.

    Quarantined (kept with the raw row and reason, never loaded), in this order:
      * a missing InvoiceNo or StockCode; a missing or unparseable InvoiceDate, Quantity or
        UnitPrice;
      * Quantity 0;
      * UnitPrice < 0: the two 'Adjust bad debt' lines, accounting entries, not sales;
      * UnitPrice 0: stock adjustments ('damaged', 'wet', '?', found/lost stock, mostly with
        negative Quantity and no customer) and a few free items. They carry no revenue, and loaded
        they would show write-offs as purchases and distort item popularity and basket sizes;
      * service lines that are not products (SERVICE_CODES: postage, carriage, Amazon and bank
        fees, charity commission, discounts, manual and bad-debt adjustments, samples). Loaded
        they would become the "most bought item" and add +-hundreds of thousands of non-product
        revenue (AMAZONFEE alone is -221k) to shoppers' spend;
      * a cancellation with a positive Quantity, or a negative Quantity on a normal invoice
        (neither occurs in the UCI file once the rules above are applied).
    The revenue of every row (loaded, quarantined, duplicate) is recorded so the ingest report
    reconciles to the file's sum(Quantity * UnitPrice).
    """
    c = {n: _col(staged, n, "online-retail") for n in
         ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
          "CustomerID", "Country")}
    inv, code = parse.text(c["InvoiceNo"]), parse.text(c["StockCode"])
    qty, price = parse.number(c["Quantity"]), parse.number(c["UnitPrice"])
    ts = parse.timestamp(c["InvoiceDate"], time_format=opts.get("time_format"))
    fields = {
        "__user_id": f"regexp_replace({parse.text(c['CustomerID'])}, '\\.0+$', '')",
        "__item_id": code,
        "__type": f"CASE WHEN upper({inv}) LIKE 'C%' THEN 'return' ELSE 'purchase' END",
        "__ts": ts,
        "__qty": qty,
        "__price": price,
        "__basket": inv,
        "__title": parse.text(c["Description"]),
    }
    services = ", ".join(sql_str(s) for s in SERVICE_CODES)
    checks = [
        (f"{inv} IS NULL", "InvoiceNo", "missing InvoiceNo"),
        (f"{code} IS NULL", "StockCode", "missing StockCode"),
        *missing_or_bad(c["InvoiceDate"], "__ts", "InvoiceDate",
                         "a date (expected e.g. 2011-12-09 12:50:00 or 12/9/2011 12:50)"),
        *missing_or_bad(c["Quantity"], "__qty", "Quantity", "a number"),
        *missing_or_bad(c["UnitPrice"], "__price", "UnitPrice", "a number"),
        *plausible_time("__ts", "InvoiceDate", opts),
        *plausible_qty("__qty", "Quantity"),
        *plausible_price("__price", "UnitPrice"),
        ("__qty = 0", "Quantity", "Quantity is 0"),
        ("__price < 0", "UnitPrice", "negative UnitPrice (bad-debt adjustment, not a sale)"),
        ("__price = 0", "UnitPrice",
         "UnitPrice is 0 (stock adjustment, damaged or lost stock, or a free item: not a sale)"),
        (f"upper(__item_id) IN ({services})", "StockCode",
         "service line, not a product (postage, fees, discounts, manual or bad-debt adjustments)"),
        ("__type = 'return' AND __qty > 0", "Quantity",
         "cancellation invoice (InvoiceNo C...) with a positive Quantity"),
        ("__type = 'purchase' AND __qty < 0", "Quantity",
         "negative Quantity on an invoice that is not a cancellation"),
    ]
    return Plan(
        fields=fields, checks=checks, revenue=parse.revenue(qty, price),
        user_attrs={"country": parse.text(c["Country"])},
        notes=["cancellations (InvoiceNo C...) loaded as 'return' events with negative quantity",
               "rows without CustomerID loaded with user_id NULL (items and baskets only)"],
        mapping={k: v.strip('"') for k, v in c.items()},
        sources={"time": "InvoiceDate", "quantity": "Quantity", "price": "UnitPrice"},
    )


CLICKSTREAM_TYPES = {"view": "view", "cart": "cart", "remove_from_cart": "cart",
                     "purchase": "purchase"}


def clickstream_plan(staged: Staged, opts: dict) -> Plan:
    """The "eCommerce behavior data from multi category store" layout.

    event_time -> ts ('2019-10-01 00:00:00 UTC'); product_id -> item_id; user_id -> user_id
    (missing: anonymous, user_id NULL); user_session -> session_id, and also basket_id of
    purchase events (the data has no order id; purchases in one session form one basket);
    price -> unit_price and the item's median price; category_code 'a.b.c' -> category_path
    'a > b > c', and when an item has no code its category_id ('category 2053013555631882655'),
    so items without a code still group by category; brand -> brand. Items have no names in this data: an item's title is its brand and
    the last category level ('samsung smartphone'), else 'product <id>'.

    event_type view/cart/purchase map to themselves, quantity 1. ``remove_from_cart`` has no
    Segment Studio type of its own: it is loaded as a ``cart`` event with quantity -1, so the
    interest shown stays visible while sum(quantity) over cart events gives net additions.

    Quarantined: a missing product_id; a missing or unparseable event_time; a missing or unknown
    event_type; a price that is not a number or is negative.

    Revenue is the price of each purchase event (quantity 1), reconciled like the other formats.
    """
    names = ("event_time", "event_type", "product_id", "category_code", "brand", "price",
             "user_id", "user_session")
    c = {n: _col(staged, n, "clickstream") for n in names}
    cat_id = find_column(["category_id"], staged.columns)
    by_id = f"'category ' || {parse.text(ident(cat_id))}" if cat_id else "NULL"
    et = f"lower({parse.text(c['event_type'])})"
    typ = "CASE " + " ".join(f"WHEN {et} = {sql_str(k)} THEN {sql_str(v)}"
                             for k, v in CLICKSTREAM_TYPES.items()) + " END"
    brand = parse.text(c["brand"])
    last_level = f"list_last(string_split({parse.text(c['category_code'])}, '.'))"
    fields = {
        "__user_id": f"regexp_replace({parse.text(c['user_id'])}, '\\.0+$', '')",
        "__item_id": parse.text(c["product_id"]),
        "__type": typ,
        "__ts": parse.timestamp(c["event_time"], time_format=opts.get("time_format")),
        "__qty": f"CASE WHEN {et} = 'remove_from_cart' THEN -1.0 ELSE 1.0 END",
        "__price": parse.number(c["price"]),
        "__basket": f"CASE WHEN {et} = 'purchase' THEN {parse.text(c['user_session'])} END",
        "__session": parse.text(c["user_session"]),
        "__title": f"coalesce(nullif(concat_ws(' ', {brand}, replace({last_level}, '_', ' ')), ''), "
                   f"'product ' || {parse.text(c['product_id'])})",
        "__category": f"coalesce({parse.category_path(c['category_code'])}, {by_id})",
        "__brand": brand,
    }
    checks = [
        ("__item_id IS NULL", "product_id", "missing product_id"),
        *missing_or_bad(c["event_time"], "__ts", "event_time", "a date"),
        *plausible_time("__ts", "event_time", opts),
        (f"{et} IS NULL", "event_type", "missing event_type"),
        ("__type IS NULL", "event_type",
         "unknown event_type (expected view, cart, remove_from_cart or purchase)"),
        (f"{parse.text(c['price'])} IS NOT NULL AND __price IS NULL", "price", "price is not a number"),
        *plausible_price("__price", "price"),
        ("__price < 0", "price", "negative price"),
    ]
    price = parse.number(c["price"])
    return Plan(fields=fields, checks=checks,
                revenue=f"CASE WHEN {et} = 'purchase' THEN {parse.revenue('1.0', price)} ELSE 0 END",
                revenue_types=("purchase",),
                notes=["remove_from_cart loaded as 'cart' events with quantity -1",
                       "purchases in one user_session form one basket"],
                mapping={k: v.strip('"') for k, v in c.items()},
                sources={"time": "event_time", "price": "price"})


def baskets_plan(staged: Staged, opts: dict) -> Plan:
    """One basket per line, labels separated by commas (the Groceries layout).

    basket_id = line number, event_type purchase, user_id NULL, ts NULL, one event per distinct
    label (quantity = times the label appears on the line). Labels are trimmed ('cream cheese '
    -> 'cream cheese'); empty labels between commas are ignored (counted in the report). A blank
    line is quarantined as an empty basket. Identical lines are different shoppers' baskets, so
    nothing is deduplicated. Items: item_id = title = the label.
    """
    line = ident(staged.columns[0])
    labels = f"list_filter(list_transform(string_split(coalesce({line}, ''), ','), lambda s: trim(s)), lambda s: s <> '')"
    return Plan(
        fields={"__items": labels, "__type": "'purchase'"},
        checks=[("len(__items) = 0", "line", "empty basket (blank line)")],
        dedup=False, baskets=True,
        notes=["one basket per line; basket_id is the line number; labels trimmed"],
        mapping={"basket": "line number", "item": "comma-separated labels"},
    )


# ------------------------------------------------------------------ events (user mapping)
ROLES = ("user", "item", "time", "type", "quantity", "price", "basket", "session",
         "title", "category", "brand", "rating", "review")
# Column names tried when a role is not mapped explicitly (case-insensitive).
GUESSES = {
    "user": ["user_id", "user", "userid", "customer_id", "customer", "customerid", "visitor_id",
             "visitorid"],
    "item": ["item_id", "item", "product_id", "product", "sku", "stockcode", "itemid"],
    "time": ["ts", "timestamp", "time", "event_time", "date", "datetime", "created_at"],
    "type": ["event_type", "type", "event", "action"],
    "quantity": ["quantity", "qty"],
    "price": ["price", "unit_price", "unitprice"],
    "basket": ["basket_id", "basket", "order_id", "order", "transactionid", "transaction_id", "invoice"],
    "session": ["session_id", "session", "user_session"],
    "rating": ["rating", "stars"],
    "review": ["review_text", "review"],
}


def single_id_column(columns: list[str], taken: set[str] = frozenset()) -> str | None:
    """The one column named like an id ("movieId", "sku_id") that no other role has taken and
    that is no shopper's, order's or session's; None where there are none or several."""
    other = {g.replace("_", "") for r in ("user", "basket", "session") for g in GUESSES[r]}
    ids = [c for c in columns if ident(c) not in taken
           and c.lower().replace("_", "").endswith("id")
           and c.lower().replace("_", "") not in other]
    return ids[0] if len(ids) == 1 else None


def events_plan(staged: Staged, opts: dict) -> Plan:
    """Any event table, with a column mapping from flags or a TOML file (see core.ingest.mapping).

    Roles: user, item (required), time, type, quantity, price, basket, session, and item
    attributes title, category, brand. A role is a source column, or a constant
    ({const = "purchase"}). Unmapped roles are guessed from common column names (user_id,
    product_id, timestamp, event_type, quantity, price, order_id, session_id...) and reported.
    Without any type the rows are purchases; without a time, ts is NULL; without a quantity
    column, quantity is 1 (a mapped quantity that is empty is quarantined).

    Event names go through [types] (source name -> Segment Studio type), else are used as they
    are when they already are a Segment Studio type. Time is text (ISO, US m/d/Y, d.m.Y, or
    time_format) or epoch seconds (epoch = true; "ms" for milliseconds).

    Quarantined: a missing item id; a time that is missing or does not parse (when mapped); an
    unknown or missing event type; a quantity or price that is present but not a number; a
    negative price. A missing user id loads as an anonymous row (user_id NULL); an id written as
    a decimal (17850.0) becomes 17850. Timezone offsets in time text are dropped (times are kept
    as written).
    """
    columns = opts.get("columns") or {}
    types = {str(k).strip().lower(): v for k, v in (opts.get("types") or {}).items()}
    fix = ("Fix the name in the mapping file / --*-col flag (names are matched case-insensitively).")
    src: dict[str, str] = {}
    consts: dict[str, str] = {}
    guessed = []
    category_sql = None
    for role in ROLES:
        spec = columns.get(role)
        if role == "category" and categories.is_composite(spec):
            category_sql = categories.sql(spec, staged, "a category column", fix)
            src_words = categories.describe(spec)
            continue
        if isinstance(spec, dict):
            if "const" not in spec:
                raise IngestError(f"mapping for '{role}' must be a column name or {{ const = ... }}")
            consts[role] = str(spec["const"])
        elif spec:
            src[role] = ident(resolve_column(str(spec), staged.columns, staged.path,
                                             purpose=f"mapped to {role}", fix=fix))
        elif role in GUESSES:
            g = find_column(GUESSES[role], staged.columns)
            if g is not None:
                src[role] = ident(g)
                guessed.append(f"{role} = {g}")
    if "item" not in src and "item" not in consts:
        g = single_id_column(staged.columns, taken=set(src.values()))
        if g is not None:
            src["item"] = ident(g)
            guessed.append(f"item = {g}")
    if "item" not in src and "item" not in consts:
        raise IngestError(
            f"{staged.path}: no item column. Columns found: {', '.join(staged.columns)}. "
            f"Say which column holds the item/product id with --item-col NAME "
            f"(or item = \"NAME\" under [columns] in the mapping file).{no_header_hint(staged.columns)}"
        )

    def val(role: str, conv=parse.text) -> str:
        if role in src:
            return conv(src[role])
        if role in consts:
            return conv(sql_str(consts[role]))
        return "NULL"

    # event type: [types] mapping, else the name itself if it is a Segment Studio type
    from core.store.schema import EVENT_TYPES

    for k, v in types.items():
        if v not in EVENT_TYPES:
            raise IngestError(f"[types] maps '{k}' to '{v}', which is not an event type. "
                              f"Use one of: {', '.join(EVENT_TYPES)}.")
    reviews = "rating" in src or "review" in src
    default_type = "'review'" if reviews else "'purchase'"
    raw_type = f"lower({val('type')})" if ("type" in src or "type" in consts) else default_type
    known = ", ".join(sql_str(t) for t in EVENT_TYPES)
    if types:
        case = " ".join(f"WHEN {raw_type} = {sql_str(k)} THEN {sql_str(v)}" for k, v in types.items())
        typ = f"CASE {case} WHEN {raw_type} IN ({known}) THEN {raw_type} END"
    else:
        typ = f"CASE WHEN {raw_type} IN ({known}) THEN {raw_type} END"

    epoch = opts.get("epoch")
    if epoch is True or (isinstance(epoch, str) and epoch.lower() in ("true", "s", "seconds")):
        epoch = "s"
    elif isinstance(epoch, str) and epoch.lower() in ("ms", "milliseconds"):
        epoch = "ms"
    elif epoch in (None, False) or (isinstance(epoch, str) and epoch.lower() == "false"):
        epoch = None
    else:
        raise IngestError(f"epoch must be true (seconds), \"ms\" or false, not {epoch!r}.")
    ts_of = lambda x: parse.timestamp(x, epoch=epoch, time_format=opts.get("time_format"))  # noqa: E731

    fields = {
        "__user_id": f"regexp_replace({val('user')}, '\\.0+$', '')" if "user" in src else val("user"),
        "__item_id": val("item"),
        "__type": typ,
        "__ts": val("time", ts_of),
        "__qty": val("quantity", parse.number) if ("quantity" in src or "quantity" in consts) else "1.0",
        "__price": val("price", parse.number),
        "__basket": val("basket"),
        "__session": val("session"),
        "__title": val("title"),
        "__category": category_sql or val("category"),
        "__brand": val("brand"),
        "__rating": val("rating", parse.number),
        "__review": val("review"),
    }
    name = lambda role: src.get(role, role).strip('"')  # noqa: E731
    checks = [("__item_id IS NULL", name("item"), f"missing item id ({name('item')})")]
    if "time" in src:
        what = "epoch seconds" if epoch == "s" else "epoch milliseconds" if epoch else "a date"
        checks += missing_or_bad(src["time"], "__ts", name("time"), what)
        checks += plausible_time("__ts", name("time"), opts)
    if "type" in src:
        checks += [
            (f"{val('type')} IS NULL", name("type"), "missing event type"),
            ("__type IS NULL", name("type"),
             "unknown event type (map it under [types] in the mapping file, e.g. buy = \"purchase\")"),
        ]
    elif "type" in consts:
        checks.append(("__type IS NULL", "type", "unknown event type in the const mapping"))
    if "quantity" in src:
        checks += missing_or_bad(src["quantity"], "__qty", name("quantity"), "a number")
        checks += plausible_qty("__qty", name("quantity"))
    if "price" in src:
        checks += [
            (f"{parse.text(src['price'])} IS NOT NULL AND __price IS NULL", name("price"),
             f"{name('price')} is not a number"),
            *plausible_price("__price", name("price")),
            ("__price < 0", name("price"), f"negative {name('price')}"),
        ]
    if "rating" in src:
        checks.append((f"{parse.text(src['rating'])} IS NOT NULL AND __rating IS NULL", name("rating"),
                       f"{name('rating')} is not a number"))
    revenue = None
    if "quantity" in src and "price" in src:
        revenue = parse.revenue(parse.number(src["quantity"]), parse.number(src["price"]))
    notes = []
    if guessed:
        notes.append("columns guessed from their names: " + ", ".join(guessed))
    if "type" not in src and "type" not in consts:
        notes.append("no event type column: every row is a review (it has a rating or review text)"
                     if reviews else "no event type column: every row is a purchase")
    mapping = {r: src[r].strip('"') for r in src} | {r: f"const {v}" for r, v in consts.items()}
    if category_sql:
        mapping["category"] = src_words
    sources = {role: name(role) for role in ("time", "quantity", "price") if role in src}
    return Plan(fields=fields, checks=checks, revenue=revenue, notes=notes, mapping=mapping,
                sources=sources)


PLANS = {
    "online-retail": online_retail_plan,
    "clickstream": clickstream_plan,
    "baskets": baskets_plan,
    "events": events_plan,
}


def plan_for(fmt: str, staged: Staged, opts: dict) -> Plan:
    if fmt not in PLANS:
        raise IngestError(f"unknown format '{fmt}'. Use one of: {', '.join(FORMATS)}.")
    return PLANS[fmt](staged, opts)
