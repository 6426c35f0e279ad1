"""Run retention: a store keeps the last few complete builds, not every build ever made.

Every build adds its outputs (features, profiles, model, segments, map, rules...) as rows tagged
with its ``run_id``; without pruning a store grows by the size of a build each time. After a
build, ``prune_runs`` deletes the outputs of complete builds older than the newest ``keep``
(default 5), except builds that records point at (a saved segment's source build, see
``core.store.records.RUN_REFERENCES``). A pruned build keeps its row in ``runs`` with status
'pruned' (its parameters and metrics stay in the history); its outputs are gone.

DuckDB reuses the freed space for the next build's outputs, so the store's size levels off
instead of growing with every build.
"""

from __future__ import annotations

import duckdb

DEFAULT_KEEP_RUNS = 5


def run_scoped_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Tables of the current database with a run_id column (the build outputs), except runs."""
    return [r[0] for r in con.execute(
        "SELECT DISTINCT table_name FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND column_name = 'run_id' AND table_name <> 'runs' "
        "ORDER BY 1").fetchall()]


def legacy_runs_in_use(con: duckdb.DuckDBPyConnection) -> set[int]:
    """Run ids that saved segments kept inside an older store point at."""
    has = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                      "AND table_name = 'saved_segments'").fetchone()[0]
    if not has:
        return set()
    return {int(r[0]) for r in con.execute(
        "SELECT DISTINCT source_run_id FROM saved_segments WHERE source_run_id IS NOT NULL").fetchall()}


def runs_to_prune(con: duckdb.DuckDBPyConnection, keep: int = DEFAULT_KEEP_RUNS,
                  protect: set[int] | frozenset[int] = frozenset()) -> list[int]:
    """Complete builds beyond the newest ``keep``, minus the protected ones, oldest first."""
    if keep < 1:
        raise ValueError(f"keep_runs must be at least 1 (got {keep}): the newest build is always kept.")
    complete = [int(r[0]) for r in con.execute(
        "SELECT run_id FROM runs WHERE kind = 'build' AND status = 'complete' "
        "ORDER BY run_id DESC").fetchall()]
    return sorted(r for r in complete[keep:] if r not in protect)


def prune_runs(con: duckdb.DuckDBPyConnection, keep: int = DEFAULT_KEEP_RUNS,
               protect: set[int] | frozenset[int] = frozenset()) -> dict:
    """Delete the outputs of builds beyond the newest ``keep`` (inside a store write).

    Returns {"pruned": [run ids], "kept": [run ids of complete builds left], "protected": [...]}.
    """
    protect = set(protect) | legacy_runs_in_use(con)
    victims = runs_to_prune(con, keep, protect)
    if victims:
        ids = ", ".join(str(int(r)) for r in victims)
        for t in run_scoped_tables(con):
            con.execute(f'DELETE FROM "{t}" WHERE run_id IN ({ids})')
        con.execute(f"UPDATE runs SET status = 'pruned' WHERE run_id IN ({ids})")
    kept = [int(r[0]) for r in con.execute(
        "SELECT run_id FROM runs WHERE kind = 'build' AND status = 'complete' ORDER BY run_id").fetchall()]
    return {"pruned": victims, "kept": kept,
            "protected": sorted(p for p in protect if p in kept)}
