"""Column mappings for ``--format events``: a TOML file and/or command-line flags.

    [columns]
    user = "customer_id"
    item = "sku"
    time = "ordered_at"            # timestamp text; or epoch = true for epoch seconds ("ms" too)
    quantity = "qty"
    price = "unit_price"
    basket = "order_id"
    type = { const = "purchase" }  # a constant: every row is a purchase
    # session, title, category, brand are also roles

    epoch = false                  # may also sit under [columns]
    time_format = "%d/%m/%Y %H:%M" # optional strptime format for time text
    encoding = "latin-1"           # optional: the CSV's encoding (default UTF-8)

    [types]                        # source event names -> Segment Studio's (matched case-insensitively)
    buy = "purchase"
    add_to_cart = "cart"

    [items]                        # columns of the --items file (guessed from common names if absent)
    id = "sku"
    title = "name"

    [users]                        # the --users file's id column; every other column is an attribute
    id = "customer_id"

The result is a plain dict: {"columns", "types", "epoch", "time_format", "encoding",
"items_columns", "users_columns"}. Flags override the file. time_format and encoding apply to
every format.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any

from core.ingest.formats import ITEM_ROLES, ROLES
from core.ingest.reader import IngestError

_TOP = ("columns", "types", "epoch", "time_format", "encoding", "items", "users")


def _suggest(word: str, options) -> str:
    m = difflib.get_close_matches(word, list(options), n=1, cutoff=0.5)
    return f" Did you mean '{m[0]}'?" if m else ""


def load_mapping(path: str | Path) -> dict[str, Any]:
    """Read and validate a mapping TOML file."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"mapping file {path} does not exist. Check the path given to --mapping.")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise IngestError(f"{path}: not valid TOML ({e}). See README.md, 'Loading your own data'.") from e
    return normalize(data, source=str(path))


def normalize(data: dict | None, source: str = "mapping") -> dict[str, Any]:
    """Validate a mapping dict (TOML layout, or already normalised) and return the normal form."""
    data = dict(data or {})
    if "items_columns" in data or "users_columns" in data:  # already normalised
        data["items"] = data.pop("items_columns", None) or {}
        data["users"] = data.pop("users_columns", None) or {}
    for key in data:
        if key not in _TOP:
            raise IngestError(f"{source}: unknown section or key '{key}'.{_suggest(key, _TOP)} "
                              f"Valid: {', '.join(_TOP)}.")
    columns = dict(data.get("columns") or {})
    epoch = data.get("epoch", columns.pop("epoch", None))
    time_format = data.get("time_format", columns.pop("time_format", None))
    for role, spec in columns.items():
        if role not in ROLES:
            raise IngestError(f"{source}: [columns] has unknown role '{role}'.{_suggest(role, ROLES)} "
                              f"Roles: {', '.join(ROLES)}.")
        if not (isinstance(spec, str) or (isinstance(spec, dict) and set(spec) == {"const"})):
            raise IngestError(f"{source}: [columns] {role} must be a column name (\"col\") or "
                              f"{{ const = \"value\" }}, not {spec!r}.")
    types = {str(k): str(v) for k, v in (data.get("types") or {}).items()}
    items = dict(data.get("items") or {})
    for role in items:
        if role not in ITEM_ROLES:
            raise IngestError(f"{source}: [items] has unknown role '{role}'.{_suggest(role, ITEM_ROLES)} "
                              f"Roles: {', '.join(ITEM_ROLES)}.")
    users = dict(data.get("users") or {})
    if set(users) - {"id"}:
        raise IngestError(f"{source}: [users] only takes id = \"COLUMN\" (other columns become attributes).")
    return {"columns": columns, "types": types, "epoch": epoch, "time_format": time_format,
            "encoding": data.get("encoding"), "items_columns": items, "users_columns": users}


def merge_flags(mapping: dict | None, *, columns: dict[str, str | None] | None = None,
                epoch: bool | str | None = None, time_format: str | None = None,
                encoding: str | None = None) -> dict[str, Any]:
    """Apply command-line flags (non-None values) over a normalised mapping."""
    m = normalize(mapping) if mapping is not None else normalize({})
    for role, col in (columns or {}).items():
        if col is not None:
            m["columns"][role] = col
    if epoch not in (None, False):
        m["epoch"] = epoch
    if time_format:
        m["time_format"] = time_format
    if encoding:
        m["encoding"] = encoding
    return m
