"""Multi-table exports: further tables joined to each row of a file by a key, in the mapping.

    [[join]]                      # joined to each event row, in this order
    file = "orders.csv"           # relative to the mapping file (else to the current folder)
    on = "order_id"               # the key, named the same in both; or left = "...", right = "..."

    [[join]]
    file = "products.csv"
    on = "product_id"

    [[items.join]]                # the same for the --items file (items + categories tables)
    file = "categories.csv"
    on = "category_id"

A later join may use a column an earlier one brought (order lines -> products -> aisles). The
file given to ``segstudio ingest`` must be the table with one row per event (the order lines,
not the orders): a joined table gives at most one row per key. Joined columns can then be
mapped like the file's own; a name the file already has is prefixed with the joined file's
stem (``orders.status``).

Every joined file is accounted for: rows read = rows used + rows whose key matches no row of
the file + rows repeating a key already seen (the first is used) + rows without a key +
malformed lines. Warnings: a joined table whose keys match no row at all, a key that repeats,
and a large share (``UNLINKED_WARN``) of rows that find no match.
"""

from __future__ import annotations

from pathlib import Path

from core.ingest.errors import IngestError
from core.ingest.reader import Staged, ident, resolve_column, stage
from core.progress import NULL, Progress

UNLINKED_WARN = 0.10   # warn when at least this share of the rows finds no row in a joined table


def check(joins, source: str, base: Path | None = None) -> list[dict]:
    """Validate [[join]] entries; file paths are made absolute (relative to ``base`` if there)."""
    if joins is None:
        return []
    if isinstance(joins, dict):
        joins = [joins]
    out = []
    for j in joins:
        if not isinstance(j, dict) or not j.get("file"):
            raise IngestError(f"{source}: each [[join]] needs file = \"FILE\" and on = \"KEY\" "
                              f"(or left = \"KEY IN THIS FILE\" and right = \"KEY IN THE JOINED FILE\").")
        extra = set(j) - {"file", "on", "left", "right"}
        if extra:
            raise IngestError(f"{source}: [[join]] takes file, on, left and right, not "
                              f"{', '.join(sorted(extra))}.")
        left, right = j.get("left") or j.get("on"), j.get("right") or j.get("on")
        if not left or not right:
            raise IngestError(f"{source}: [[join]] for {j['file']} needs on = \"KEY\" (or left "
                              f"and right).")
        p = Path(str(j["file"])).expanduser()
        if not p.is_absolute() and base is not None and (base / p).is_file():
            p = base / p
        out.append({"file": str(p if p.is_absolute() else p.resolve()), "left": str(left),
                    "right": str(right)})
    return out


def apply(con, staged: Staged, view: str, joins: list[dict], *, encoding: str | None = None,
          progress: Progress = NULL) -> list[dict]:
    """Join ``joins`` onto the staged ``view`` (in place); return one accounting dict per file."""
    if not joins:
        return []
    stats, cur, cols = [], f"temp.{view}", list(staged.columns)
    for i, j in enumerate(joins):
        jp = Path(j["file"])
        if not jp.is_file():
            raise IngestError(f"{jp}: no such file (a [[join]] of the mapping file). Check the path; "
                              f"it is relative to the mapping file's folder.")
        left = resolve_column(j["left"], cols, staged.path, purpose=f"the key to join {jp.name}",
                              fix="Fix on / left in the [[join]] of the mapping file.")
        jv = f"{view}_j{i}"
        js = stage(con, jp, view=jv, encoding=encoding, progress=progress)
        right = resolve_column(j["right"], js.columns, jp, purpose=f"the key to join {jp.name} on",
                               fix="Fix on / right in the [[join]] of the mapping file.")
        taken = {c.lower() for c in cols}
        add = []
        for c in js.columns:
            if c == right:
                continue
            name = c if c.lower() not in taken else f"{jp.name.split('.')[0]}.{c}"
            taken.add(name.lower())
            add.append((c, name))
        keyed = (f"SELECT * FROM temp.{jv} WHERE nullif(trim({ident(right)}), '') IS NOT NULL "
                 f"QUALIFY row_number() OVER (PARTITION BY trim({ident(right)}) ORDER BY __rn) = 1")
        sel = "".join(f", j.{ident(c)} AS {ident(n)}" for c, n in add)
        out = f"{view}_jt{i}"
        con.execute(f"""CREATE TEMP TABLE {out} AS SELECT b.*{sel}, j.__rn AS __jrn
            FROM {cur} b LEFT JOIN ({keyed}) j ON trim(b.{ident(left)}) = trim(j.{ident(right)})""")
        unlinked, linked_keys = con.execute(
            f"SELECT count(*) FILTER (WHERE __jrn IS NULL), count(DISTINCT __jrn) FROM temp.{out}"
        ).fetchone()
        con.execute(f"ALTER TABLE temp.{out} DROP COLUMN __jrn")
        missing, distinct = con.execute(
            f"SELECT count(*) FILTER (WHERE nullif(trim({ident(right)}), '') IS NULL), "
            f"count(DISTINCT nullif(trim({ident(right)}), '')) FROM temp.{jv}").fetchone()
        repeated = js.rows - missing - distinct
        st = {"role": "joined", "source_file": str(jp.resolve()), "key": f"{left} = {right}",
              "rows_read": js.rows + js.rejects, "rows_used": int(linked_keys),
              "rows_unmatched": int(distinct - linked_keys), "rows_repeated_key": int(repeated),
              "rows_missing_key": int(missing), "malformed_lines": int(js.rejects),
              "rows_unlinked": int(unlinked), "rows_of_file": int(staged.rows)}
        st["reconciles"] = st["rows_read"] == (st["rows_used"] + st["rows_unmatched"] + repeated
                                               + missing + js.rejects)
        stats.append(st)
        cols += [n for _, n in add]
        cur = f"temp.{out}"
    con.execute(f"DROP VIEW IF EXISTS temp.{view}")
    con.execute(f"CREATE TEMP VIEW {view} AS SELECT * FROM {cur}")
    staged.columns = cols
    return stats


def warnings(stats: list[dict], what: str = "rows") -> list[str]:
    """Warnings about joined files for the report (and so for `segstudio status`)."""
    out = []
    for s in stats:
        name = Path(s["source_file"]).name
        if s["rows_of_file"] and s["rows_used"] == 0:
            out.append(f"warning: no key of {name} ({s['key']}) matches any of the {what}: nothing "
                       f"was joined. Check the key columns in the [[join]].")
        elif s["rows_of_file"] and s["rows_unlinked"] >= UNLINKED_WARN * s["rows_of_file"]:
            out.append(f"warning: {s['rows_unlinked']:,} of {s['rows_of_file']:,} {what} "
                       f"({s['rows_unlinked'] / s['rows_of_file']:.0%}) find no row in {name} "
                       f"({s['key']}); their joined columns are empty.")
        if s["rows_repeated_key"]:
            out.append(f"warning: {s['rows_repeated_key']:,} rows of {name} repeat a key already "
                       f"seen: only the first row per key is used. The file given to ingest should "
                       f"be the one with a row per event (e.g. order lines), joined to the others.")
        if s["malformed_lines"]:
            out.append(f"warning: {s['malformed_lines']:,} malformed lines in {name} were skipped.")
    return out
