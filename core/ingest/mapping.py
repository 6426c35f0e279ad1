"""Column mappings for ``--format events``: a TOML file and/or command-line flags.

    [columns]
    user = "customer_id"
    item = "sku"
    time = "ordered_at"            # timestamp text; or epoch = true for epoch seconds ("ms" too)
    quantity = "qty"
    price = "unit_price"
    basket = "order_id"
    type = { const = "purchase" }  # a constant: every row is a purchase
    # session, title, brand, rating, review (text) are also roles; category may be a column or
    # { column = "genres", split = "|" }, { flags = [...] }, { path = ["dept", "aisle"] }
    # (core.ingest.categories)

    epoch = false                  # may also sit under [columns]
    time_format = "%d/%m/%Y %H:%M" # optional strptime format for time text
    encoding = "latin-1"           # optional: the CSV's encoding (default UTF-8)
    earliest = "2005-01-01"        # optional: accepted dates (default 1990-01-01 to a year from today)
    latest = "2030-12-31"
    currency = "USD"               # optional: the shop's currency (symbol or code)
    header = false                 # optional: the file has no header row; name columns by
                                   # position, user = 1 (or "1"), item = 2, ...

    [types]                        # source event names -> Segment Studio's (matched case-insensitively)
    buy = "purchase"
    add_to_cart = "cart"

    [items]                        # columns of the --items file (guessed from common names if absent)
    id = "sku"
    title = "name"

    [users]                        # the --users file's id column; every other column is an attribute
    id = "customer_id"

The result is a plain dict: {"columns", "types", "epoch", "time_format", "encoding", "earliest",
"latest", "items_columns", "users_columns", "currency", "header", "joins", "items_joins"}
(joins: ``core.ingest.joins``). Flags override the file. time_format, encoding and
the date window apply to every format.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any

from core.ingest import categories, joins, sanity
from core.ingest.formats import ROLES
from core.ingest.sidefiles import ITEM_ROLES
from core.ingest.reader import IngestError

_TOP = ("columns", "types", "epoch", "time_format", "encoding", "earliest", "latest", "items",
        "users", "currency", "header", "join", "items_header", "users_header")


def _suggest(word: str, options) -> str:
    m = difflib.get_close_matches(word, list(options), n=1, cutoff=0.5)
    return f" Did you mean '{m[0]}'?" if m else ""


def load_mapping(path: str | Path) -> dict[str, Any]:
    """Read and validate a mapping TOML file."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"mapping file {path} does not exist. Check the path given to --mapping.")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise IngestError(f"{path}: the mapping file is not UTF-8 text (is it the right file?). "
                          f"Save it as a UTF-8 TOML file; see README.md, 'Loading your own data'.") from None
    except tomllib.TOMLDecodeError as e:
        raise IngestError(f"{path}: not valid TOML ({e}). See README.md, 'Loading your own data'.") from e
    return normalize(data, source=str(path), base=path.resolve().parent)


def normalize(data: dict | None, source: str = "mapping", base: Path | None = None) -> dict[str, Any]:
    """Validate a mapping dict (TOML layout, or already normalised) and return the normal form.

    ``base``: the mapping file's folder, against which [[join]] file paths are resolved."""
    data = dict(data or {})
    if "items_columns" in data or "users_columns" in data:  # already normalised
        data["items"] = dict(data.pop("items_columns", None) or {})
        data["users"] = data.pop("users_columns", None) or {}
        data["join"] = data.pop("joins", None)
        if data.get("items_joins"):
            data["items"]["join"] = data.pop("items_joins")
        data.pop("items_joins", None)
    for key in data:
        if key not in _TOP:
            raise IngestError(f"{source}: unknown section or key '{key}'.{_suggest(key, _TOP)} "
                              f"Valid: {', '.join(_TOP)}.")
    columns = {k: _position(v) for k, v in (data.get("columns") or {}).items()}
    for key in ("earliest", "latest", "encoding", "currency", "header"):  # settings under [columns]
        if key in columns and key not in data:
            data[key] = columns.pop(key)
    header = data.get("header", True)
    if not isinstance(header, bool):
        raise IngestError(f"{source}: header must be true or false (false: the file has no header "
                          f"row and columns are named by position, 1, 2, ...), not {header!r}.")
    epoch = data.get("epoch", columns.pop("epoch", None))
    time_format = data.get("time_format", columns.pop("time_format", None))
    for role, spec in columns.items():
        if role not in ROLES:
            raise IngestError(f"{source}: [columns] has unknown role '{role}'.{_suggest(role, ROLES)} "
                              f"Roles: {', '.join(ROLES)}.")
        if role == "category":
            categories.check(spec, source)
        elif not (isinstance(spec, str) or (isinstance(spec, dict) and set(spec) == {"const"})):
            raise IngestError(f"{source}: [columns] {role} must be a column name (\"col\") or "
                              f"{{ const = \"value\" }}, not {spec!r}.")
    types = {str(k): str(v) for k, v in (data.get("types") or {}).items()}
    items = {k: _position(v) for k, v in (data.get("items") or {}).items()}
    items_joins = joins.check(items.pop("join", None), f"{source} [items]", base)
    users = {k: _position(v) for k, v in (data.get("users") or {}).items()}
    side_header = {}
    for name, sec in (("items", items), ("users", users)):
        h = sec.pop("header", data.get(f"{name}_header", True))
        if not isinstance(h, bool):
            raise IngestError(f"{source}: [{name}] header must be true or false, not {h!r}.")
        side_header[name] = h
    for role in items:
        if role not in ITEM_ROLES:
            raise IngestError(f"{source}: [items] has unknown role '{role}'.{_suggest(role, ITEM_ROLES)} "
                              f"Roles: {', '.join(ITEM_ROLES)}.")
    categories.check(items.get("category"), source, "[items]")
    if set(users) - {"id"}:
        raise IngestError(f"{source}: [users] only takes id = \"COLUMN\" and header = false "
                          f"(other columns become attributes).")
    if time_format is not None:
        check_time_format(str(time_format))
    if data.get("encoding") is not None:
        check_encoding(str(data["encoding"]))
    if data.get("currency") is not None:
        from core.ingest.currency import symbol

        symbol(str(data["currency"]))
    try:
        sanity.window(data.get("earliest"), data.get("latest"))
    except sanity.SanityError as e:
        raise IngestError(f"{source}: {e}") from None
    return {"columns": columns, "types": types, "epoch": epoch, "time_format": time_format,
            "encoding": data.get("encoding"), "earliest": data.get("earliest"),
            "latest": data.get("latest"), "items_columns": items, "users_columns": users,
            "currency": data.get("currency"), "header": header,
            "joins": joins.check(data.get("join"), source, base), "items_joins": items_joins,
            "items_header": side_header["items"], "users_header": side_header["users"]}


def _position(spec):
    """A column given by position (user = 1) is the column named "1" of a header-less file."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        return str(spec)
    return spec


def check_time_format(fmt: str) -> None:
    """Refuse a strptime format DuckDB cannot use (e.g. '%Q'), with the fix."""
    import duckdb

    try:
        duckdb.connect().execute("SELECT try_strptime('2011-12-09', ?)", [fmt]).fetchall()
    except duckdb.Error as e:
        first = str(e).splitlines()[0].split("Error: ", 1)[-1]
        raise IngestError(
            f"--time-format {fmt!r} is not a valid date format ({first}). Use strptime codes, "
            f"e.g. '%d/%m/%Y %H:%M' for 09/12/2011 12:50 (%d day, %m month, %Y year, %H hour, "
            f"%M minute, %S second).") from None


def check_encoding(name: str) -> None:
    import codecs

    try:
        codecs.lookup(name)
    except LookupError:
        raise IngestError(f"--encoding {name!r} is not a text encoding Python knows. Common ones: "
                          f"utf-8, latin-1, cp1252, utf-16.") from None


def merge_flags(mapping: dict | None, *, columns: dict[str, str | None] | None = None,
                epoch: bool | str | None = None, time_format: str | None = None,
                encoding: str | None = None, earliest: str | None = None,
                latest: str | None = None, no_header: bool = False) -> dict[str, Any]:
    """Apply command-line flags (non-None values) over a normalised mapping."""
    m = normalize(mapping) if mapping is not None else normalize({})
    if time_format:
        check_time_format(time_format)
    if encoding:
        check_encoding(encoding)
    for key, value in (("earliest", earliest), ("latest", latest)):
        if value:
            m[key] = value
    try:
        sanity.window(m.get("earliest"), m.get("latest"))
    except sanity.SanityError as e:
        raise IngestError(str(e)) from None
    for role, col in (columns or {}).items():
        if col is not None:
            m["columns"][role] = col
    if epoch not in (None, False):
        m["epoch"] = epoch
    if time_format:
        m["time_format"] = time_format
    if encoding:
        m["encoding"] = encoding
    if no_header:
        m["header"] = False
    return m
