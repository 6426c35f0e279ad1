"""`segstudio export --lens`: both lenses export, and the file names the segment."""

from __future__ import annotations

import csv
import json

import pytest

from core.cli import main
from test_explore import make_tiny_store


def test_export_lens_lifecycle_and_taste(tmp_path, capsys):
    store = make_tiny_store(tmp_path / "shop.duckdb")
    out = tmp_path / "at-risk.csv"
    assert main(["export", "--db", str(store.path), "--lens", "lifecycle", "--segment", "3",
                 "--out", str(out), "--columns", "id", "segment", "other_segment", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["what"] == "lifecycle segment 3 'At risk'" and result["rows"] == 4
    rows = list(csv.reader(out.open()))
    assert rows == [["user_id", "segment_id", "segment_name", "taste_segment_id", "taste_segment_name"],
                    ["u05", "3", "At risk", "0", "Gift buyers"],
                    ["u06", "3", "At risk", "0", "Gift buyers"],
                    ["u07", "3", "At risk", "1", "Kitchen regulars"],
                    ["u08", "3", "At risk", "1", "Kitchen regulars"]]

    taste = tmp_path / "kitchen.csv"
    assert main(["export", "--db", str(store.path), "--lens", "taste", "--segment", "1",
                 "--out", str(taste), "--columns", "id", "segment", "other_segment"]) == 0
    assert "Wrote 6 shoppers of taste segment 1 'Kitchen regulars'" in capsys.readouterr().out
    rows = list(csv.reader(taste.open()))
    assert rows[0][3:] == ["lifecycle_segment_id", "lifecycle_segment_name"]
    assert [r[4] for r in rows[1:]] == ["At risk", "At risk"] + ["Loyal high value"] * 4

    # a taste segment number that is not a lifecycle stage: refused, with the stages listed
    nope = tmp_path / "nope.csv"
    assert main(["export", "--db", str(store.path), "--lens", "lifecycle", "--segment", "2",
                 "--out", str(nope)]) == 2
    err = capsys.readouterr().err
    assert "Segment 2 is not in build 1 (lifecycle lens)" in err
    assert "0 (Loyal high value), 1 (Active repeat buyers), 3 (At risk)" in err
    assert not nope.exists()
    with pytest.raises(SystemExit) as bad:  # argparse: usage and the choices on stderr
        main(["export", "--db", str(store.path), "--lens", "colour", "--segment", "1",
              "--out", str(nope)])
    assert bad.value.code == 2 and "choose from 'taste', 'lifecycle'" in capsys.readouterr().err
    assert not nope.exists()
