"""Every export path is safe: no overwrite without --force, no writing through a symlink onto the
store, never half a file, text cells neutralised for spreadsheets in CSV and Parquet."""

from __future__ import annotations

import errno
import json
import os

import pandas as pd
import pytest

from core import explore as ex
from core.cli import main
from test_explore import make_tiny_store

DANGER = "=cmd|' /C calc'!A0"


@pytest.fixture()
def store(tmp_path):
    s = make_tiny_store(tmp_path / "shop.duckdb")
    with s.write() as con:
        con.execute("UPDATE users SET attributes = ? WHERE user_id = 'u02'",
                    [json.dumps({"country": DANGER, "age_band": "+SUM(A1:A9)"})])
    return s


def _export(store, out, *extra) -> tuple[int, list[str]]:
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["export", "--db", str(store.path), "--segment", "0", "--out", str(out),
                     "--columns", "id", "attributes", "-q", *extra])
    return code, [ln for ln in err.getvalue().splitlines() if ln.strip()]


def test_existing_file_is_not_overwritten_without_force(store, tmp_path):
    out = tmp_path / "list.csv"
    out.write_text("last week's list\n")
    code, err = _export(store, out)
    assert code == 2 and len(err) == 1 and "already exists" in err[0] and "--force" in err[0]
    assert out.read_text() == "last week's list\n"
    code, err = _export(store, out, "--force")
    assert code == 0, err
    assert pd.read_csv(out)["user_id"].tolist() == ["u01", "u02", "u03", "u04", "u05", "u06"]


def test_a_symlink_onto_the_store_is_never_followed(store, tmp_path):
    before = store.path.read_bytes()
    link = tmp_path / "segment.csv"
    link.symlink_to(store.path)
    for extra in ((), ("--force",)):
        code, err = _export(store, link, *extra)
        assert code == 2 and len(err) == 1 and "is the Segment Studio store" in err[0], err
    assert store.path.read_bytes() == before and link.is_symlink()
    with store.read() as con:
        assert con.execute("SELECT count(*) FROM users").fetchone()[0] == 12
    # a link to some other file: refused, and with --force the link is replaced, not its target
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    other = tmp_path / "other.csv"
    other.symlink_to(target)
    code, err = _export(store, other)
    assert code == 2 and "is a link" in err[0]
    assert _export(store, other, "--force")[0] == 0
    assert target.read_text() == "keep me" and not other.is_symlink()
    assert len(pd.read_csv(other)) == 6


def test_folders_long_names_and_full_disks_give_one_line_and_no_leftovers(store, tmp_path, monkeypatch):
    (tmp_path / "exports.csv").mkdir()
    code, err = _export(store, tmp_path / "exports.csv")
    assert code == 2 and len(err) == 1 and "is a folder" in err[0]
    code, err = _export(store, tmp_path / ("x" * 300 + ".csv"))
    assert code == 2 and len(err) == 1 and "too long" in err[0], err

    def full(self, path, *a, **k):
        with open(path, "w") as f:
            f.write("user_id\nu0")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    out = tmp_path / "full.csv"
    code, err = _export(store, out)
    assert code == 2 and len(err) == 1 and "disk is full" in err[0], err
    assert not out.exists() and not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_text_cells_are_neutralised_for_spreadsheets_in_csv_and_parquet(store, tmp_path):
    for name in ("list.csv", "list.parquet"):
        assert _export(store, tmp_path / name)[0] == 0
        df = pd.read_csv(tmp_path / name) if name.endswith("csv") else pd.read_parquet(tmp_path / name)
        row = df[df["user_id"] == "u02"].iloc[0]
        assert row["country"] == "'" + DANGER and row["age_band"] == "'+SUM(A1:A9)", name
    assert _export(store, tmp_path / "raw.parquet", "--for", "tool")[0] == 0
    raw = pd.read_parquet(tmp_path / "raw.parquet")
    assert raw[raw["user_id"] == "u02"].iloc[0]["country"] == DANGER
    # the dashboard's download bytes follow the same rule
    frame = ex.export_frame(store.read(), 1, ["u02"], ["id", "attributes"])
    assert b"'=cmd" in ex.to_csv_bytes(frame)
    import io
    assert pd.read_parquet(io.BytesIO(ex.to_parquet_bytes(frame)))["country"][0] == "'" + DANGER
    assert pd.read_parquet(io.BytesIO(ex.to_parquet_bytes(frame, for_spreadsheet=False)))["country"][0] == DANGER


def test_rules_output_is_refused_before_mining_when_it_exists(store, tmp_path, capsys):
    out = tmp_path / "rules.csv"
    out.write_text("keep")
    assert main(["rules", "--db", str(store.path), "--out", str(out), "-q"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_text() == "keep"
