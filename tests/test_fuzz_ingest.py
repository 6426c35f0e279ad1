"""Fuzzed inputs: every damaged file either loads with an exact count or is refused in one line.

A seeded set of a few hundred files across the four formats, CSV / TSV / gzip / Parquet, several
encodings and line-ending styles, and many kinds of damage (tests/fuzz_inputs.py). For every file
`segstudio ingest` must

* exit 0 with rows read = loaded + quarantined + duplicates (and, where the damage leaves the
  number of records unambiguous, rows read = the records written), or
* exit 2 with a one-line message that names the file;

never print a traceback, never load a poison value (checked with the build's own input check),
and leave a store that opens.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections import Counter

import pytest

from core.cli import main
from core.ingest.sanity import check_inputs
from core.store import Store
from fuzz_inputs import make_cases

N_FILES = 300
SEED = 2024
BATCH = 25  # files per store


def _ingest(case, db) -> tuple[int, str, str]:
    argv = ["ingest", str(case.path), "--format", case.fmt, "--db", str(db), "--json", "--quiet"]
    if case.encoding_flag:
        argv += ["--encoding", case.encoding_flag]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def test_every_fuzzed_file_loads_exactly_or_is_refused_in_one_line(tmp_path):
    cases = make_cases(N_FILES, SEED, tmp_path / "files")
    t0 = time.perf_counter()
    outcomes: Counter = Counter()
    problems = []
    checked_counts = 0
    for k, case in enumerate(cases):
        db = tmp_path / f"store{k // BATCH}.duckdb"
        code, out, err = _ingest(case, db)
        if "Traceback" in out + err:
            problems.append(f"{case.name}: traceback\n{err[-2000:]}")
            continue
        if code == 0:
            rep = json.loads(out)
            if rep.get("skipped_already_ingested"):
                outcomes["same content as an earlier file"] += 1
                continue
            total = rep["rows_loaded"] + rep["rows_quarantined"] + rep["rows_duplicate"]
            if rep["rows_read"] != total or not rep["reconciles"]:
                problems.append(f"{case.name}: does not reconcile {rep['rows_read']} vs {total} "
                                f"(revenue {rep.get('revenue')})")
            if case.expected_rows is not None:
                checked_counts += 1
                if rep["rows_read"] != case.expected_rows:
                    problems.append(f"{case.name}: rows read {rep['rows_read']}, the file has "
                                    f"{case.expected_rows} records")
            outcomes["loaded, identity exact"] += 1
        elif code == 2:
            lines = [ln for ln in err.splitlines() if ln.strip()]
            if len(lines) != 1 or not lines[0].startswith("error: ") or case.path.name not in lines[0]:
                problems.append(f"{case.name}: exit 2 without a one-line message naming the file: {err!r}")
            outcomes["refused, one line naming the file"] += 1
        else:
            problems.append(f"{case.name}: exit code {code}: {err.strip()[:500]}")
        if (k + 1) % BATCH == 0 or k == len(cases) - 1:
            if db.exists():
                with Store(db).read() as con:  # the store opens and holds no poison
                    con.execute("SELECT count(*) FROM events").fetchone()
                    check_inputs(con)
    seconds = time.perf_counter() - t0
    print(f"\nfuzz: {len(cases)} files in {seconds:.1f} s: {dict(outcomes)}; "
          f"{checked_counts} exact record counts checked against the generator")
    assert not problems, "\n".join(problems[:20]) + f"\n({len(problems)} problems)"
    # the damage really reaches both outcomes
    assert outcomes["loaded, identity exact"] > N_FILES // 2
    assert outcomes["refused, one line naming the file"] >= 10


def test_fuzz_cases_are_reproducible(tmp_path):
    a = [(c.name, c.path.read_bytes()) for c in make_cases(15, SEED, tmp_path / "a")]
    b = [(c.name, c.path.read_bytes()) for c in make_cases(15, SEED, tmp_path / "b")]
    assert a == b


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
