"""Taste segments of a very large shop: chosen on a sample, then every shopper assigned in chunks.

Up to ``MAX_FIT_SHOPPERS`` shoppers the taste lens works on everyone at once
(``core.segments.build_taste``). Above it, holding every shopper's expected-item distribution,
fitting every candidate k twice and checking each on held-out baskets would cost hours and tens
of gigabytes, so:

1. **Sample.** A seeded sample of ``MAX_FIT_SHOPPERS`` shoppers goes through the whole choice:
   candidates, k, seed and bootstrap stability, held-out validity. The figures the run reports
   are the sample's, and the run says so (``sample`` in the stage's metrics).
2. **Assign.** Every shopper (the sample included, the same rule for all) is then placed in
   chunks of ``CHUNK`` shoppers: their taste inputs, the taste space fitted on the sample
   (its SVD, its block scales), the fitted segmentation's assignment rule (signature coverage,
   nearest centre; DBSCAN: the segment of the nearest sampled shopper), and their rows are
   written at once, so memory stays the size of a chunk.
3. **Cheaper expectations.** The encoder's expected items come from a shopper's last position
   only (``SCALE_STRIDE`` = 20: one of the last 20) instead of the mean over every 2nd of them
   (10 positions), for the sample and everyone alike. Scoring a 50,000-item catalogue at 10
   positions for a million shoppers is ~64 TFLOP plus a softmax over 5e11 values; with one
   position the top items come straight from the logits (``core.segments.taste._expected``).
   Measured at 50,000 items on 2 cores: ~3,000 shoppers/s, against ~730 at 2 positions.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

MAX_FIT_SHOPPERS = 100_000
CHUNK = 50_000
SCALE_STRIDE = 20
DEFAULT_STRIDE = 2


def fit_sample(n: int, seed: int) -> np.ndarray | None:
    """Positions of the shoppers the segments are chosen on; None: everyone."""
    if n <= MAX_FIT_SHOPPERS:
        return None
    return np.sort(np.random.default_rng(seed + 7).choice(n, MAX_FIT_SHOPPERS, replace=False))


def sample_note(n_sample: int, n: int) -> dict:
    return {"shoppers": int(n_sample), "of": int(n),
            "why": f"segments are chosen and checked on a random sample of {n_sample:,} of the "
                   f"{n:,} shoppers (more would take hours), then every shopper is placed in "
                   "the segment whose members they match"}


def assign_everyone(con, run_id: int, *, seq, model, device: str, candidate: str, window: dict,
                    tmodel, sample_labels: np.ndarray, habits: np.ndarray,
                    progress=None) -> np.ndarray:
    """Write ``segments`` and ``taste_vectors`` rows of every shopper in ``seq`` chunk by chunk
    (see the module doc); returns every shopper's segment (ordered 0 = largest)."""
    from core.encoder.data import take_users
    from core.segments.fit import order_by_size
    from core.segments.taste import combine, l2_rows, taste_inputs

    n = len(seq.user_ids)
    svd, scales = window["svd"], window["scales"]
    X_fit = window["X"][candidate]
    k = int(sample_labels.max()) + 1 if (sample_labels >= 0).any() else 0
    # each segment's centre and, for refined segments, the signature match's standardisation:
    # measured on the sample, applied to everyone
    centres = np.stack([X_fit[sample_labels == s].mean(axis=0) for s in range(k)]) if k else None
    sig_stats = None
    if tmodel is not None and tmodel.refine:
        S = np.asarray((window["inp"].Q @ tmodel.signatures).todense())
        sig_stats = (S.mean(axis=0), np.where(S.std(axis=0) > 0, S.std(axis=0), 1.0))
    con.execute("DELETE FROM segments WHERE run_id = ?", [run_id])
    con.execute("DELETE FROM taste_vectors WHERE run_id = ?", [run_id])
    labels = np.full(n, -1, np.int64)
    for start in range(0, n, CHUNK):
        idx = np.arange(start, min(n, start + CHUNK))
        inp = taste_inputs(con, run_id, seq=take_users(seq, idx), model=model, device=device,
                           stride=SCALE_STRIDE)
        R = inp.Q.copy()
        R.data = np.sqrt(R.data)
        XA = l2_rows(svd.transform(R)).astype(np.float32)
        X = XA if candidate == "taste" else combine(XA, habits[idx], scales=scales)
        if tmodel is not None:
            lab = tmodel.assign(X, inp.Q)
        else:  # DBSCAN: the segment of the nearest sampled shopper
            from core.neighbours import exact_knn

            near, _ = exact_knn(X, X_fit, 1)
            lab = sample_labels[near[:, 0]]
        labels[idx] = lab
        dist = np.full(len(idx), np.nan)
        ok = lab >= 0
        if k:
            dist[ok] = np.linalg.norm(X[ok] - centres[lab[ok]], axis=1)
        V = np.asarray(X, np.float32)
        if sig_stats is not None:
            S = (np.asarray((inp.Q @ tmodel.signatures).todense()) - sig_stats[0]) / sig_stats[1]
            V = np.hstack([l2_rows(V), 0.5 * l2_rows(S)]).astype(np.float32)
        write_rows(con, run_id, inp.user_ids, lab, dist, V)
        if progress is not None:
            progress.advance(len(idx))
    ordered = order_by_size(labels)
    remap = {int(a): int(b) for a, b in zip(labels, ordered) if a >= 0}
    if any(a != b for a, b in remap.items()):
        case = " ".join(f"WHEN {a} THEN {b}" for a, b in remap.items())
        con.execute(f"UPDATE segments SET segment_id = CASE segment_id {case} END "
                    "WHERE run_id = ? AND segment_id >= 0", [run_id])
    return ordered


def write_rows(con, run_id, user_ids, labels, dist, V) -> None:
    """Append shoppers' ``segments`` rows (with their distance to the centre) and their
    ``taste_vectors`` rows (the map's input)."""
    tbl = pa.table({"user_id": pa.array(user_ids, pa.string()),
                    "segment_id": pa.array(labels.astype(np.int32)),
                    "distance": pa.array(dist, pa.float64()),
                    "vector": pa.array(list(V), pa.list_(pa.float32()))})
    con.register("_taste_chunk", tbl)
    try:
        con.execute(f"INSERT INTO segments SELECT {int(run_id)}, user_id, segment_id, "
                    "CASE WHEN isnan(distance) THEN NULL ELSE distance END FROM _taste_chunk")
        con.execute(f"INSERT INTO taste_vectors SELECT {int(run_id)}, user_id, vector "
                    "FROM _taste_chunk")
    finally:
        con.unregister("_taste_chunk")
