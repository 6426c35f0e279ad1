"""Seeded generator of damaged input files for the ingest fuzz test (tests/test_fuzz_ingest.py).

Each case is a file in one of the four formats, written as CSV / TSV / gzip / Parquet in one of
several encodings and line-ending styles, with 0-3 kinds of damage: short and long lines, quoted
newlines, stray quotes, blank lines, poison values (infinity, 44 BC, NaN, 1e309...), duplicates,
formula-like text, bad bytes, NULs, huge fields, a cut-off end, a renamed header, or a file that
is not a table at all. ``expected_rows`` is the number of data records when the damage leaves it
unambiguous (None when it does not, e.g. a file cut off mid-quote).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

POISON_DATES = ["infinity", "-infinity", "epoch", "9999-12-31 23:59:59", "294247-01-10",
                "0044-03-15 (BC)", "1/1/0044", "12/31/9999 10:00", "1850-06-01"]
POISON_NUMBERS = ["NaN", "nan", "inf", "-inf", "Infinity", "1e309", "-1e400", "1e15", "-3e12"]
FORMULAS = ["=cmd|' /C calc'!A0", "+SUM(A1:A9)", "@SUM(1+1)", "-2+3", "\r=HYPERLINK(\"x\")"]
WORDS = ["heart", "lantern", "mug", "tin", "bag", "café", "rosé", "набор", "カップ", "🎄 bauble",
         "glass, set of 3", 'the "best" tray']


@dataclass
class Case:
    name: str
    fmt: str
    path: Path
    expected_rows: int | None
    damage: list[str] = field(default_factory=list)
    encoding_flag: str | None = None
    poison: bool = False


def _rows(fmt: str, rng: random.Random, n: int) -> tuple[list[str], list[list[str]]]:
    if fmt == "online-retail":
        header = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
                  "CustomerID", "Country"]
        rows = []
        for i in range(n):
            inv = str(536365 + i // 3)
            if rng.random() < 0.1:
                inv = "C" + inv
            qty = rng.randint(1, 24) * (-1 if inv.startswith("C") else 1)
            rows.append([inv, str(rng.randint(10000, 99999)), rng.choice(WORDS).upper(), str(qty),
                         f"{rng.randint(1, 12)}/{rng.randint(1, 28)}/2011 {rng.randint(8, 20)}:{rng.randint(10, 59)}",
                         f"{rng.randint(1, 2000) / 100:.2f}",
                         "" if rng.random() < 0.1 else f"{rng.randint(12000, 18000)}.0",
                         rng.choice(["United Kingdom", "France", "EIRE", "Germany"])])
        return header, rows
    if fmt == "clickstream":
        header = ["event_time", "event_type", "product_id", "category_id", "category_code", "brand",
                  "price", "user_id", "user_session"]
        rows = []
        for i in range(n):
            rows.append([f"2019-10-{rng.randint(1, 31):02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00 UTC",
                         rng.choice(["view", "view", "cart", "remove_from_cart", "purchase"]),
                         str(rng.randint(1000, 1100)), str(rng.randint(1, 9) * 10**17),
                         rng.choice(["electronics.audio.headphone", "appliances.kitchen.kettle", ""]),
                         rng.choice(["samsung", "apple", "", "bosch"]),
                         f"{rng.randint(100, 90000) / 100:.2f}", str(rng.randint(500, 560)),
                         f"s{rng.randint(1, 40)}"])
        return header, rows
    if fmt == "events":
        header = ["customer_id", "sku", "timestamp", "qty", "price", "order_id", "event_type"]
        rows = []
        for i in range(n):
            rows.append([f"c{rng.randint(1, 30)}", f"sku-{rng.randint(1, 60)}",
                         f"2023-0{rng.randint(1, 9)}-{rng.randint(10, 28)} 10:{rng.randint(10, 59)}:00",
                         str(rng.randint(1, 5)), f"{rng.randint(100, 9999) / 100:.2f}",
                         f"o{i // 2}", rng.choice(["purchase", "view", "cart", "return"])])
        return header, rows
    # baskets: no header, one basket per line
    return [], [[rng.choice(WORDS) for _ in range(rng.randint(1, 5))] for _ in range(n)]


def _cell_columns(fmt: str) -> dict[str, list[int]]:
    """Indexes of date / number / text columns per format (for poison and formulas)."""
    return {
        "online-retail": {"date": [4], "number": [3, 5], "text": [2]},
        "clickstream": {"date": [0], "number": [6], "text": [5]},
        "events": {"date": [2], "number": [3, 4], "text": [1]},
        "baskets": {"date": [], "number": [], "text": [0]},
    }[fmt]


def _quote(cell: str, delim: str) -> str:
    if any(c in cell for c in (delim, '"', "\n", "\r")):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def make_case(i: int, seed: int, folder: Path) -> Case:
    rng = random.Random(seed * 1_000_003 + i)
    fmt = rng.choice(["online-retail", "online-retail", "clickstream", "events", "baskets"])
    n = rng.randint(1, 40)
    header, rows = _rows(fmt, rng, n)
    cols = _cell_columns(fmt)
    damage: list[str] = []
    expected: int | None = len(rows)
    poison = False
    container = rng.choice(["csv"] * 6 + ["tsv", "gz", "parquet", "junk"])
    if fmt == "baskets" and container in ("tsv", "parquet"):
        container = "csv"
    if container == "junk":
        kind = rng.choice(["empty", "binary", "zip", "header_only", "newline_only", "pdf",
                           "truncated_gz", "not_parquet", "sqlite"])
        path = folder / f"case{i:04d}_{kind}.{'parquet' if kind == 'not_parquet' else 'csv'}"
        data = {
            "empty": b"",
            "binary": bytes(rng.getrandbits(8) for _ in range(2000)),
            "zip": b"PK\x03\x04" + bytes(rng.getrandbits(8) for _ in range(500)),
            "header_only": (",".join(header or ["a"]) + "\n").encode(),
            "newline_only": b"\n\n\n",
            "pdf": b"%PDF-1.4\n" + bytes(rng.getrandbits(8) for _ in range(300)),
            "truncated_gz": _cut(gzip.compress(("\n".join(",".join(r) for r in [header] + rows)).encode(), mtime=0)),
            "not_parquet": b"InvoiceNo,StockCode\n1,2\n",
            "sqlite": b"SQLite format 3\x00" + bytes(200),
        }[kind]
        path.write_bytes(data)
        exp = 0 if kind == "header_only" and fmt != "baskets" else None
        return Case(path.name, fmt, path, exp, [kind])

    n_damage = rng.choice([0, 1, 1, 2, 3])
    for _ in range(n_damage):
        d = rng.choice(["short", "long", "quoted_newline", "stray_quote", "blank", "poison_date",
                        "poison_number", "duplicate", "formula", "nul", "huge", "truncate",
                        "rename_header", "empty_values"])
        r = rng.randrange(len(rows))
        if d == "short" and len(rows[r]) > 1 and fmt != "baskets":
            rows[r] = rows[r][: rng.randint(1, len(rows[r]) - 1)]
        elif d == "long" and fmt != "baskets":
            rows[r] = rows[r] + ["extra"] * rng.randint(1, 3)
        elif d == "quoted_newline":
            c = rng.choice(cols["text"])
            if c < len(rows[r]):
                rows[r][c] = rows[r][c] + "\nsecond line"
        elif d == "stray_quote":
            c = rng.randrange(len(rows[r]))
            rows[r][c] = rows[r][c][:1] + '"' + rows[r][c][1:]
            expected = None
            damage.append("stray_quote_raw")
        elif d == "blank":
            damage.append("blank")
        elif d == "poison_date" and cols["date"]:
            c = cols["date"][0]
            if c < len(rows[r]):
                rows[r][c] = rng.choice(POISON_DATES)
                poison = True
        elif d == "poison_number" and cols["number"]:
            c = rng.choice(cols["number"])
            if c < len(rows[r]):
                rows[r][c] = rng.choice(POISON_NUMBERS)
                poison = True
        elif d == "duplicate":
            rows.insert(r, list(rows[r]))
            expected = expected + 1 if expected is not None else None
        elif d == "formula":
            c = rng.choice(cols["text"])
            if c < len(rows[r]):
                rows[r][c] = rng.choice(FORMULAS)
        elif d == "nul":
            c = rng.randrange(len(rows[r]))
            rows[r][c] = rows[r][c] + "\x00"
        elif d == "huge":
            c = rng.choice(cols["text"])
            if c < len(rows[r]):
                rows[r][c] = "x" * rng.choice([5000, 70000])
        elif d == "truncate":
            damage.append("truncate")
            expected = None
        elif d == "rename_header" and header:
            header = list(header)
            k = rng.randrange(len(header))
            header[k] = header[k] + "_renamed"
        elif d == "empty_values":
            c = rng.randrange(len(rows[r]))
            rows[r][c] = ""
        damage.append(d)

    if container == "parquet":
        return _parquet_case(i, fmt, header, rows, folder, damage, rng, poison)

    delim = "\t" if container == "tsv" else ","
    lines = []
    if header:
        lines.append(delim.join(_quote(h, delim) for h in header))
    for row in rows:
        if fmt == "baskets":
            lines.append(",".join(c.replace(",", " ").replace("\n", " ").replace('"', "")
                                  .replace("\x00", "") for c in row))
        elif "stray_quote_raw" in damage:
            lines.append(delim.join(c if c.count('"') == 1 else _quote(c, delim) for c in row))
        else:
            lines.append(delim.join(_quote(c, delim) for c in row))
    if "blank" in damage:
        k = rng.randint(1, len(lines))
        lines.insert(k, "")
    newline = rng.choice(["\n", "\n", "\r\n", "mixed"])
    if newline == "mixed":
        text = "".join(line + rng.choice(["\n", "\r\n"]) for line in lines)
    else:
        text = newline.join(lines) + newline
    enc = rng.choice(["utf-8"] * 6 + ["utf-8-sig", "utf-16", "utf-16-be-bom", "utf-16-le",
                                      "latin-1", "latin-1-flagged", "cp1252-flagged"])
    flag = None
    if enc == "utf-16-be-bom":
        data = codecs.BOM_UTF16_BE + text.encode("utf-16-be")
    elif enc in ("latin-1", "latin-1-flagged", "cp1252-flagged"):
        codec = "cp1252" if enc.startswith("cp1252") else "latin-1"
        data = text.encode(codec, errors="replace")
        flag = codec if enc.endswith("flagged") else None
    else:
        data = text.encode(enc, errors="surrogatepass")
    if "truncate" in damage and len(data) > 20:
        data = data[: rng.randint(len(data) // 2, len(data) - 1)]
    if expected is not None and fmt == "baskets" and "blank" in damage:
        expected += 1  # a blank line is an (empty) basket in this format
    if enc not in ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be-bom") and flag is None \
            and any(ord(ch) > 127 for ch in text):
        expected = None  # undeclared 8-bit text: bad lines are quarantined as bad encoding
    suffix = {"csv": ".csv", "tsv": ".tsv", "gz": ".csv.gz"}[container]
    if container == "gz":
        data = gzip.compress(data, mtime=0)
    path = folder / f"case{i:04d}_{fmt}_{enc}_{'-'.join(damage) or 'clean'}{suffix}"
    path.write_bytes(data)
    return Case(path.name, fmt, path, expected, damage, flag, poison)


def _parquet_case(i, fmt, header, rows, folder, damage, rng, poison) -> Case:
    import pyarrow as pa
    import pyarrow.parquet as pq

    width = len(header)
    fixed = [(r + [""] * width)[:width] for r in rows]
    arrays = {h: [r[k] if r[k] != "" else None for r in fixed] for k, h in enumerate(header)}
    num_cols = [header[c] for c in _cell_columns(fmt)["number"]]
    typed = rng.random() < 0.5
    if typed:  # typed float columns (NaN and inf as real floats); unparseable text becomes NaN
        for h in num_cols:
            out = []
            for v in arrays[h]:
                try:
                    out.append(float(v) if v is not None else None)
                except ValueError:
                    out.append(float("nan"))
            arrays[h] = out
    table = pa.table(arrays)
    path = folder / f"case{i:04d}_{fmt}_{'typed' if typed else 'text'}_{'-'.join(damage) or 'clean'}.parquet"
    buf = io.BytesIO()
    pq.write_table(table, buf)
    data = buf.getvalue()
    expected: int | None = len(rows)
    if "truncate" in damage:
        data = data[: rng.randint(8, len(data) - 1)]
        expected = None
    if rng.random() < 0.2 and "truncate" not in damage:
        data = gzip.compress(data, mtime=0)
        path = path.with_name(path.name + ".gz")
    path.write_bytes(data)
    return Case(path.name, fmt, path, expected, damage, None, poison)


def make_cases(n: int, seed: int, folder: Path) -> list[Case]:
    folder.mkdir(parents=True, exist_ok=True)
    return [make_case(i, seed, folder) for i in range(n)]


if __name__ == "__main__":  # write a set to look at: python tests/fuzz_inputs.py /tmp/fuzz 50
    import sys

    for c in make_cases(int(sys.argv[2]), 7, Path(sys.argv[1])):
        print(c.fmt, c.expected_rows, c.name)
    _ = (csv, os)


def _cut(data: bytes) -> bytes:
    return data[: max(12, len(data) // 2)]
