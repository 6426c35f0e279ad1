"""Training the profile encoder: self-supervised next-item prediction (softmax over the catalogue).

The loss is a full softmax over the catalogue, or (``negatives``) a sampled softmax with
negatives shared by the batch, which is several times cheaper on a CPU for catalogues of
thousands of items; validation always ranks the full catalogue.

Split by time: the build keeps each shopper's last basket out altogether (``cutoffs``) and
validates on the basket before it (``val_cutoffs``, not trained on). Without ``val_cutoffs``,
for every shopper with at least ``min_events_for_val`` interactions, the last
``val_fraction`` of their sequence (1 to ``max_val_per_user`` interactions) is held out. The
model trains on the earlier part (at most the last ``max_train_events_per_user`` interactions of
it, so a few very heavy shoppers do not dominate the epoch) and is scored after every epoch on
predicting each held-out interaction from everything before it, ranking the full catalogue
(NDCG@10, Recall@10). Training stops early when validation NDCG@10 has not improved by
``min_improvement`` (relative) for ``patience`` epochs; the best epoch's weights are kept. The
number of epochs is also capped by a compute budget (``max_target_passes``: epochs x training
targets). The budget counts work, not seconds, so a busy machine is slower but trains the same
model: a fixed seed gives the same weights on the same device.

Baseline on the same split: a shopper's profile is the mean of the text embeddings of the items
in their history, and items are ranked by cosine similarity of their text embedding to it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.config import DEFAULT_TEXT_MODEL
from core.encoder.loop import _n_negatives
from core.progress import NULL, Progress

# Deterministic cuBLAS needs this before the first CUDA matmul.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

CHECKPOINT_NAME = "profile_encoder"

DEFAULT_PARAMS: dict[str, Any] = {
    "d": 64,                          # hidden size
    "n_layers": 2,
    "n_heads": 2,
    "max_len": 50,                    # interactions the model looks back on
    "dropout": 0.2,
    "lr": 3e-3,
    "weight_decay": 0.0,
    "batch_size": 64,                 # windows (of max_len interactions) per step
    "negatives": "auto",              # 0/"full": full softmax; N: N sampled negatives per step;
                                      # "auto": full up to 8,192 items, else 1,024 sampled
    "max_epochs": 20,
    "max_target_passes": 450_000,     # compute budget: epochs <= this / training targets
    "patience": 2,                    # epochs without a better validation NDCG@10
    "min_improvement": 0.01,          # relative gain in NDCG@10 that counts as better
    "val_fraction": 0.1,
    "max_val_per_user": 3,
    "min_events_for_val": 4,
    "max_train_events_per_user": 50,
    "max_val_users": 20_000,          # validation: a seeded sample of shoppers above this
    "max_val_scores": 1_000_000_000,  # ... and at most this many targets x catalogue items
    "min_val_users": 1_000,           # ... but never fewer shoppers than this
    "max_seconds": None,              # stop after the epoch that passes this training time
    "threads": None,                  # CPU threads (None: half the cores, 1 to 8; see below)
    "pooling": "mean",                # profile: mean of hidden states ("mean") or last ("last")
    "feature_weight": 0.5,            # share of the profile's total variance for behaviour features
}


def resolve_params(params: dict | None) -> dict:
    params = dict(params or {})
    unknown = sorted(set(params) - set(DEFAULT_PARAMS))
    if unknown:
        raise ValueError(
            f"Unknown encoder parameter(s) {unknown}. Known: {sorted(DEFAULT_PARAMS)}."
        )
    p = {**DEFAULT_PARAMS, **params}
    if p["d"] % p["n_heads"]:
        raise ValueError(f"d ({p['d']}) must be a multiple of n_heads ({p['n_heads']}).")
    if p["pooling"] not in ("mean", "last"):
        raise ValueError(f"pooling must be 'mean' or 'last' (got {p['pooling']!r}).")
    if not 0.0 <= float(p["feature_weight"]) <= 1.0:
        raise ValueError(f"feature_weight must be between 0 and 1 (got {p['feature_weight']}).")
    return p


def default_threads() -> int:
    """Half the cores, 1 to 8. The network is small: its many small ops gain little from more
    threads, and on a busy machine every parallel op waits for its slowest thread (measured on a
    shared 2-core box: 1 thread trained 18x faster than 2)."""
    return max(1, min(8, (os.cpu_count() or 1) // 2))


@contextlib.contextmanager
def torch_settings(device: str, seed: int, threads: int | None):
    """Seeded, deterministic torch with a set number of CPU threads; restored afterwards."""
    import torch

    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    prev_fill = torch.utils.deterministic.fill_uninitialized_memory
    torch.set_num_threads(int(threads or default_threads()))
    # Deterministic mode also fills every new tensor with NaN before use, a guard against
    # reading memory no kernel wrote; torch's kernels write every element they return, so the
    # results are the same without it, and training was 8% faster (19,350 fills an epoch).
    torch.utils.deterministic.fill_uninitialized_memory = False
    if str(device).startswith("cuda"):
        # cuBLAS's workspace is fixed at import (above); a few CUDA kernels (cuDNN attention
        # backward) have no deterministic version: on the GPU a fixed seed gives the same weights
        # up to those kernels' float summation order.
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(prev_threads)
        torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
        torch.utils.deterministic.fill_uninitialized_memory = prev_fill


def _autocast(device: str):
    import torch

    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def ranks_of_targets(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of each row's target among all items; ties count against the target."""
    t = scores[np.arange(len(targets)), targets][:, None]
    return (scores >= t).sum(axis=1) - 1


def ndcg_recall_at_10(ranks: np.ndarray) -> tuple[float, float]:
    if len(ranks) == 0:
        return float("nan"), float("nan")
    hit = ranks < 10
    ndcg = np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0)
    return float(ndcg.mean()), float(hit.mean())


def text_matrix(con, item_ids: list[str], text_model: str) -> np.ndarray:
    """(len(item_ids), dim) text vectors in vocabulary order; zero rows for items without text."""
    from core.embed import item_vectors

    ids, V = item_vectors(con, text_model)
    pos = {i: k for k, i in enumerate(ids)}
    T = np.zeros((len(item_ids), V.shape[1]), dtype=np.float32)
    rows = [(k, pos[i]) for k, i in enumerate(item_ids) if i in pos]
    if rows:
        a, b = np.asarray(rows).T
        T[a] = V[b]
    return T


def baseline_mean_text(seq, n_val, T: np.ndarray) -> tuple[float, float, int]:
    """NDCG@10 / Recall@10 of the mean-of-item-text-embeddings profile (cosine ranking): each
    validation target ranked by the sum of the text vectors of everything the shopper did
    before it. The sums are made for all shoppers at once (one sparse product for what came
    before their validation part, then one step per validation position), in float64 as ever."""
    import scipy.sparse as sp

    users = np.flatnonzero(np.asarray(n_val) > 0)
    if not len(users):
        return float("nan"), float("nan"), 0
    s, e, k = (np.asarray(a, np.int64)[users] for a in (seq.starts, seq.ends, n_val))
    b = e - k                                   # each shopper's first validation position
    lens = b - s
    before = np.repeat(b - np.cumsum(lens), lens) + np.arange(int(lens.sum()))   # s..b-1 each
    counts = sp.csr_matrix((np.ones(len(before)), (np.repeat(np.arange(len(users)), lens),
                                                   seq.items[before])),
                           shape=(len(users), T.shape[0]))
    acc = np.asarray(counts @ T.astype(np.float64))
    first = np.concatenate([[0], np.cumsum(k)[:-1]])    # targets in shopper, then time order
    P = np.zeros((int(k.sum()), T.shape[1]), dtype=np.float32)
    targets = np.zeros(int(k.sum()), dtype=np.int64)
    for j in range(int(k.max())):
        live = np.flatnonzero(k > j)
        P[first[live] + j] = acc[live]
        targets[first[live] + j] = seq.items[b[live] + j]
        acc[live] += T[seq.items[b[live] + j]]
    norms = np.linalg.norm(P, axis=1, keepdims=True)
    np.divide(P, norms, out=P, where=norms > 0)
    ranks = np.concatenate([
        ranks_of_targets(P[i:i + 2048] @ T.T, targets[i:i + 2048])
        for i in range(0, len(P), 2048)
    ])
    nd, rc = ndcg_recall_at_10(ranks)
    return nd, rc, len(targets)


@dataclass
class Prepared:
    """A training run made ready by ``prepare_training``: the loop's job (what a background
    worker or Ray receives) and what ``finish_training`` needs to record the result."""
    job: Any
    item_ids: list
    counts: dict  # shoppers and interactions read (not the sequences: at 80 M events, 1.9 GB)
    text_model: str
    cutoffs: dict | None
    val_cutoffs: dict | None
    baseline: tuple
    n_train_targets: int
    t_start: float
    sampled: dict


def train_encoder(con, run_id: int, *, device: str = "auto", seed: int = 42,
                  text_model: str = DEFAULT_TEXT_MODEL, params: dict | None = None,
                  cutoffs: dict[str, int] | None = None,
                  val_cutoffs: dict[str, int] | None = None, progress: Progress = NULL,
                  engine=None) -> dict:
    """Train the profile encoder on the store's events; write model_checkpoints (safetensors +
    JSON config), encoder_items and training_curve for ``run_id``; return the metrics.

    ``cutoffs`` ({user_id: n}) keeps shopper u's interactions from the (n+1)-th on out of
    training and validation altogether: the build passes each shopper's held-out last basket
    (``core.features.holdout``), so the checks made on it later are honest. ``val_cutoffs``
    ({user_id: n}, the basket before the last): shopper u's interactions from the (n+1)-th on
    (up to the cut) are the early-stopping validation set instead of the last ``val_fraction``,
    and are not trained on either, so the offline evaluation can tune on that basket honestly.
    The checkpoint records a fingerprint of both (``holdout_fingerprint``) that the evaluation
    compares with its own split before it scores the encoder. ``engine`` (``core.engine``)
    runs the training loop (``core.encoder.loop.fit``): here, or as DDP on Ray.

    The three steps are also callable apart (``prepare_training``, the loop, and
    ``finish_training``), so the loop can run in a background worker while the build goes on."""
    from core.engine import LOCAL

    prep = prepare_training(con, device=device, seed=seed, text_model=text_model, params=params,
                            cutoffs=cutoffs, val_cutoffs=val_cutoffs, progress=progress,
                            engine=engine)
    fitted = (engine or LOCAL).fit_encoder(prep.job, progress)
    return finish_training(con, run_id, prep, fitted, engine_name=(engine or LOCAL).name)


def prepare_training(con, *, device: str = "auto", seed: int = 42,
                     text_model: str = DEFAULT_TEXT_MODEL, params: dict | None = None,
                     cutoffs: dict[str, int] | None = None,
                     val_cutoffs: dict[str, int] | None = None, progress: Progress = NULL,
                     engine=None, baseline: bool = True) -> Prepared:
    """Read the sequences and build the training windows, validation set and baseline
    (``baseline=False``: not computed, for an encoder whose figures nobody reads)."""
    from core.embed import embed_items, resolve_device
    from core.encoder.data import (bound_work, load_sequences, split_spans, truncate,
                                   validation_set, vocabulary, windows)
    from core.engine import FitJob

    t_start = time.perf_counter()
    p = resolve_params(params)
    dev = resolve_device(device)
    text_model = text_model or DEFAULT_TEXT_MODEL
    embed_items(con, text_model, device=dev, progress=progress, engine=engine)  # no-op if cached

    item_ids = vocabulary(con)
    seq = truncate(load_sequences(con, item_ids), cutoffs)
    if len(seq.user_ids) < 2:
        raise ValueError(
            f"The profile encoder needs interactions of at least 2 shoppers with a user_id "
            f"(found {len(seq.user_ids)}). Ingest data with customer ids, or skip profiles."
        )
    T = text_matrix(con, item_ids, text_model)
    if p["max_target_passes"] and dev.startswith("cuda") and \
            "max_target_passes" not in (params or {}):
        # The budget is sized for 2 CPU cores. On a GPU an epoch is cheap: measured on an
        # H200 (10,000 demo shoppers, 815,138 events), 10x the budget trained 4 epochs in
        # 14.3 s against 1 epoch in 9.9 s, validation NDCG@10 0.520 against 0.500.
        p["max_target_passes"] = 10 * int(p["max_target_passes"])
    n_val, spans = split_spans(seq, p, val_cutoffs)
    n_val, spans, sampled = bound_work(n_val, spans, p, seed, n_items=len(item_ids))
    L = int(p["max_len"])
    tr_items, tr_types, tr_gaps, tr_targets = windows(seq, spans, L)
    if len(tr_items) == 0:
        raise ValueError("Too few interactions to train the profile encoder (every shopper has "
                         "fewer than 2 interactions before the validation split).")
    val = validation_set(seq, n_val, L)
    baseline = baseline_mean_text(seq, n_val, T) if baseline else \
        (float("nan"), float("nan"), int(np.asarray(n_val).sum()))

    n_targets = int((tr_targets >= 0).sum())
    max_epochs = int(p["max_epochs"])
    if p["max_target_passes"]:
        max_epochs = max(1, min(max_epochs, int(p["max_target_passes"]) // max(n_targets, 1)))
    job = FitJob(n_items=len(item_ids), text=T,
                 train=(tr_items, tr_types, tr_gaps, tr_targets), val=val, params=p,
                 max_epochs=max_epochs, device=dev, seed=seed)
    counts = {"n_users": len(seq.user_ids), "n_interactions": int(len(seq.items)),
              "n_held_out_interactions": int(len(seq.items) - (seq.ends - seq.starts).sum())}
    return Prepared(job, item_ids, counts, text_model, cutoffs, val_cutoffs, baseline, n_targets,
                    t_start, sampled)


def finish_training(con, run_id: int, prep: Prepared, fitted, engine_name: str = "local") -> dict:
    """Record a finished training run (``fitted``: a ``core.engine.FitResult``) for ``run_id``."""
    import torch
    from safetensors.torch import save as st_save

    from core.encoder.data import holdout_fingerprint
    from core.encoder.model import SeqEncoder, param_count

    job, item_ids, text_model = prep.job, prep.item_ids, prep.text_model
    cutoffs, val_cutoffs, t_start = prep.cutoffs, prep.val_cutoffs, prep.t_start
    p, dev, seed, T, L = job.params, job.device, job.seed, job.text, int(job.params["max_len"])
    base_ndcg, base_recall, n_val_targets = prep.baseline
    max_epochs = job.max_epochs
    curve = fitted.curve
    n_neg = _n_negatives(p["negatives"], len(item_ids))
    model = SeqEncoder(len(item_ids), T.shape[1], d=p["d"], n_layers=p["n_layers"],
                       n_heads=p["n_heads"], max_len=L, dropout=p["dropout"])
    model.load_state_dict(fitted.state)
    best_epoch = fitted.best_epoch
    best_row = curve[best_epoch - 1]
    seconds = time.perf_counter() - t_start

    v_ndcg, b_ndcg = _none_if_nan(best_row["val_ndcg10"]), _none_if_nan(base_ndcg)
    metrics = {
        "val_ndcg10": v_ndcg,
        "val_recall10": _none_if_nan(best_row["val_recall10"]),
        "baseline_mean_embedding_ndcg10": b_ndcg,
        "baseline_mean_embedding_recall10": _none_if_nan(base_recall),
        "ndcg10_ratio_vs_baseline": (v_ndcg / b_ndcg if v_ndcg is not None and b_ndcg else None),
        "softmax": "full" if n_neg == 0 else f"sampled ({n_neg} negatives)",
        "epochs": len(curve),
        "max_epochs": max_epochs,
        "best_epoch": best_epoch,
        "seconds": round(seconds, 3),
        "train_seconds": round(fitted.train_seconds, 3),
        "engine": engine_name,
        "train_workers": fitted.workers,
        "device": dev,
        **prep.counts,
        "n_items": len(item_ids),
        "n_users_with_held_out_basket": int(len(cutoffs or {})),
        "n_train_targets": prep.n_train_targets,
        **prep.sampled,
        "n_val_targets": int(n_val_targets),
        "n_parameters": param_count(model),
        "text_model": text_model,
    }
    config = {
        "arch": "SeqEncoder",
        "params": p,
        "n_items": len(item_ids),
        "text_dim": int(T.shape[1]),
        "text_model": text_model,
        "seed": seed,
        "device": dev,
        "torch": torch.__version__,
        "metrics": metrics,
        "holdout": {"test": holdout_fingerprint(cutoffs), "validation":
                    holdout_fingerprint(val_cutoffs) if val_cutoffs is not None else None,
                    "n_test": len(cutoffs or {}), "n_validation": len(val_cutoffs or {})},
    }
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    weights = st_save(state)

    con.execute("DELETE FROM model_checkpoints WHERE run_id = ? AND name = ?",
                [run_id, CHECKPOINT_NAME])
    con.execute("INSERT INTO model_checkpoints VALUES (?, ?, ?, ?)",
                [run_id, CHECKPOINT_NAME, json.dumps(config, default=_json_default), weights])
    con.execute("DELETE FROM encoder_items WHERE run_id = ?", [run_id])
    import pandas as pd

    vocab_df = pd.DataFrame({  # noqa: F841 - read by DuckDB's replacement scan
        "item_index": np.arange(len(item_ids), dtype=np.int32),
        "item_id": pd.Series(item_ids, dtype=object),
    })
    con.execute(f"INSERT INTO encoder_items SELECT {int(run_id)}, item_index, item_id "
                "FROM vocab_df")
    con.execute("DELETE FROM training_curve WHERE run_id = ?", [run_id])
    con.executemany(
        "INSERT INTO training_curve VALUES (?, ?, ?, ?, ?, ?)",
        [[run_id, r["epoch"], r["train_loss"], _none_if_nan(r["val_ndcg10"]),
          _none_if_nan(r["val_recall10"]), r["seconds"]] for r in curve],
    )
    return metrics


def _none_if_nan(x):
    return None if x is None or x != x else float(x)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    return str(o)
