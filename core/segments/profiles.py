"""Reading the encoder's profile vectors (the `profiles` table) as one float32 matrix."""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow.compute as pc


class NoProfilesError(RuntimeError):
    pass


def load_profiles(con, run_id: int, table: str = "profiles") -> tuple[list[str], np.ndarray]:
    """``(user_ids, X)`` for run ``run_id``, rows ordered by user_id, X float32 (n, d), from
    ``table`` (``profiles``, or ``taste_vectors`` for the taste space).

    Raises ``NoProfilesError`` naming the run and the fix when the run has no profiles, and a
    ``ValueError`` naming the users when vectors have different lengths or non-finite values.
    """
    run_id = int(run_id)
    # execute() rather than sql(): DuckDB 2 refuses a relation query while an earlier stage's
    # execute() result on this connection is unfinished; execute() supersedes it. (Its arrow
    # output copies the rows once more - it warns about that; fine for profile matrices.)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tbl = con.execute(
            f"SELECT user_id, vector FROM {table} WHERE run_id = ? ORDER BY user_id", [run_id]
        ).to_arrow_table()
    n = tbl.num_rows
    if n == 0:
        raise NoProfilesError(
            f"Run {run_id} has no rows in the `{table}` table, so there is nothing to segment or "
            "map. They are written by the build's encoder and segment stages; run the whole "
            "build with `segstudio build`."
        )
    vec = tbl.column("vector").combine_chunks()
    lengths = pc.list_value_length(vec).to_numpy(zero_copy_only=False)
    d = int(lengths[0])
    if d == 0 or (lengths != d).any():
        bad = int(np.flatnonzero(lengths != d)[0]) if d else 0
        uid = tbl.column("user_id")[bad].as_py()
        raise ValueError(
            f"{table} (run {run_id}): vectors must all have the same, non-zero length; user "
            f"{uid!r} has {int(lengths[bad])} values but the first user has {d}. "
            "Rebuild the profiles (`segstudio build`)."
        )
    X = vec.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(n, d)
    finite = np.isfinite(X).all(axis=1)
    if not finite.all():
        uid = tbl.column("user_id")[int(np.flatnonzero(~finite)[0])].as_py()
        raise ValueError(
            f"{table} (run {run_id}): user {uid!r} has a NaN or infinite value in its vector "
            f"({int((~finite).sum())} user(s) affected). Rebuild the profiles (`segstudio build`)."
        )
    return tbl.column("user_id").to_pylist(), np.ascontiguousarray(X)
