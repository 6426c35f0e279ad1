"""Using a trained profile encoder: profile vectors for every shopper, and live next-item scores.

Profile vector = [a * (s - mean_s), b * (x - mean_x)] where s is the shopper's sequence
representation (the encoder's hidden states pooled and L2-normalised) and x their standardised
behaviour features from ``core.features.feature_matrix``. a and b are chosen so the sequence
block carries (1 - feature_weight) and the feature block feature_weight of the profile's total
variance (0.5: equal), whatever the number of dimensions in each.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from datetime import date, datetime

import numpy as np

from core.encoder.train import (
    CHECKPOINT_NAME,
    DEFAULT_PARAMS,
    _autocast,
    _json_default,
)
from core.progress import NULL, Progress


class EncoderNotFound(LookupError):
    pass


_LIVE_LOCK = threading.RLock()  # the thread count is process-wide; re-entrant for nesting


@contextlib.contextmanager
def one_torch_thread():
    """One torch thread for scoring short sequences: the ops are tiny, and with more threads a
    busy machine stalls them in spin-waits (measured: p90 144 ms with 2 threads vs 1.3 ms with
    1 for one shopper; ~30x slower per batch call). The previous count is restored after."""
    import torch

    with _LIVE_LOCK:
        prev = torch.get_num_threads()
        if prev != 1:
            torch.set_num_threads(1)
        try:
            yield
        finally:
            if prev != 1:
                torch.set_num_threads(prev)


def _read_checkpoint(con, run_id: int):
    rows = con.execute(
        "SELECT config, weights FROM model_checkpoints WHERE run_id = ? AND name = ?",
        [run_id, CHECKPOINT_NAME],
    ).fetchall()
    if not rows:
        raise EncoderNotFound(
            f"Run {run_id} has no trained profile encoder (no '{CHECKPOINT_NAME}' row in "
            "model_checkpoints). Run `segstudio build` on this store first."
        )
    config, weights = rows[0]
    item_ids = [r[0] for r in con.execute(
        "SELECT item_id FROM encoder_items WHERE run_id = ? ORDER BY item_index", [run_id]
    ).fetchall()]
    return json.loads(config), bytes(weights), item_ids


def _build_model(config: dict, weights: bytes, device: str):
    from safetensors.torch import load as st_load

    from core.encoder.model import SeqEncoder

    p = {**DEFAULT_PARAMS, **config["params"]}
    model = SeqEncoder(config["n_items"], config["text_dim"], d=p["d"], n_layers=p["n_layers"],
                       n_heads=p["n_heads"], max_len=p["max_len"], dropout=p["dropout"])
    model.load_state_dict(st_load(weights))
    return model.to(device).eval(), p


def _pooled(model, seq, pooling: str, device: str, progress_stage=None,
            batch: int | None = None):
    """L2-normalised pooled representation of each user's last max_len interactions, ``batch``
    shoppers at a time (default 128 on a CPU, where it keeps the work in cache: measured
    0.19 ms a shopper at 512 and 0.13 at 128, the same vectors; 1,024 on a GPU)."""
    import torch

    from core.encoder.data import last_window

    L = model.max_len
    n = len(seq.user_ids)
    batch = batch or (128 if str(device) == "cpu" else 1024)
    out = np.zeros((n, model.d), dtype=np.float32)
    with torch.inference_mode(), _autocast(device):
        E = model.item_matrix()
        for i in range(0, n, batch):
            us = range(i, min(n, i + batch))
            win = [last_window(seq, seq.starts[u], seq.ends[u], L) for u in us]
            items, types, gaps = (torch.as_tensor(np.stack(c), device=device) for c in zip(*win))
            h = model(items, types, gaps, E)
            v = model.pool(h, types, pooling).float()
            v = torch.nn.functional.normalize(v, dim=-1)
            out[i:i + len(us)] = v.cpu().numpy()
            if progress_stage is not None:
                progress_stage.advance(len(us))
    return out


def fuse(S: np.ndarray, X: np.ndarray, feature_weight: float):
    """Centre both blocks and scale them to (1 - w) and w of the total variance.
    Returns (profiles, stats) with stats to apply the same transform to a new shopper."""
    S = np.asarray(S, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    mu_s = S.mean(axis=0) if len(S) else np.zeros(S.shape[1])
    mu_x = X.mean(axis=0) if len(X) else np.zeros(X.shape[1])
    tv_s = float(((S - mu_s) ** 2).sum(axis=1).mean()) if len(S) else 0.0
    tv_x = float(((X - mu_x) ** 2).sum(axis=1).mean()) if len(X) and X.shape[1] else 0.0
    w = float(feature_weight)
    a = math.sqrt((1.0 - w) / tv_s) if tv_s > 0 else 0.0
    b = math.sqrt(w / tv_x) if tv_x > 0 else 0.0
    P = np.hstack([a * (S - mu_s), b * (X - mu_x)]).astype(np.float32)
    stats = {"feature_weight": w, "seq_scale": a, "feature_scale": b,
             "seq_mean": mu_s.tolist(), "feature_mean": mu_x.tolist(),
             "seq_total_variance": tv_s, "feature_total_variance": tv_x}
    return P, stats


def compute_profiles(con, run_id: int, *, device: str = "auto", feature_weight: float | None = None,
                     progress: Progress = NULL, engine=None) -> dict:
    """Write ``profiles`` (user_id, vector) for every user in ``user_features`` of ``run_id``:
    the encoder's sequence representation fused with the standardised behaviour features.
    ``engine`` (``core.engine``) runs the encoder over the shoppers: here, or on Ray by shard."""
    from core.embed import resolve_device
    from core.engine import LOCAL
    from core.features import feature_matrix

    t0 = time.perf_counter()
    dev = resolve_device(device)
    config, weights, item_ids = _read_checkpoint(con, run_id)
    model, p = _build_model(config, weights, dev)
    w = float(p["feature_weight"] if feature_weight is None else feature_weight)
    if not 0.0 <= w <= 1.0:
        raise ValueError(f"feature_weight must be between 0 and 1 (got {w}).")

    user_ids, X, names = feature_matrix(con, run_id)
    X = np.asarray(X, dtype=np.float32)
    seq_users, S_seq = (engine or LOCAL).sequence_vectors(con, config, weights, item_ids,
                                                          p["pooling"], dev, progress)
    pos = {u: i for i, u in enumerate(seq_users)}
    idx = np.array([pos.get(u, -1) for u in user_ids], dtype=np.int64)
    have = idx >= 0
    S = np.zeros((len(user_ids), model.d), dtype=np.float32)
    S[have] = S_seq[idx[have]]
    if have.any() and not have.all():
        S[~have] = S[have].mean(axis=0)  # no interactions: the average shopper's sequence part
    P, stats = fuse(S, X, w)

    import pandas as pd

    profiles_df = pd.DataFrame({  # noqa: F841 - read by DuckDB's replacement scan
        "user_id": pd.Series(user_ids, dtype=object),
        "vector": list(P),
    })
    con.execute("DELETE FROM profiles WHERE run_id = ?", [run_id])
    con.execute(f"INSERT INTO profiles SELECT {int(run_id)}, user_id, CAST(vector AS FLOAT[]) "
                "FROM profiles_df")
    config["fusion"] = {**stats, "feature_names": list(names), "pooling": p["pooling"]}
    con.execute(
        "UPDATE model_checkpoints SET config = ? WHERE run_id = ? AND name = ?",
        [json.dumps(config, default=_json_default), run_id, CHECKPOINT_NAME],
    )
    return {
        "n_users": len(user_ids),
        "users_without_interactions": int((~have).sum()),
        "dim": int(P.shape[1]) if P.ndim == 2 else 0,
        "sequence_dim": int(model.d),
        "feature_dim": int(X.shape[1]) if X.ndim == 2 else 0,
        "feature_weight": w,
        "pooling": p["pooling"],
        "device": dev,
        "engine": (engine or LOCAL).name,
        "seconds": round(time.perf_counter() - t0, 3),
    }


def _seconds(ts) -> float:
    """Seconds since the epoch for a datetime / pandas Timestamp / numpy datetime64 / number /
    ISO string; NaN when unknown."""
    if ts is None:
        return float("nan")
    if isinstance(ts, datetime):
        if ts.tzinfo is not None:
            ts = ts.replace(tzinfo=None) - ts.utcoffset()
        return (ts - datetime(1970, 1, 1)).total_seconds()
    if isinstance(ts, date):
        return (datetime(ts.year, ts.month, ts.day) - datetime(1970, 1, 1)).total_seconds()
    if isinstance(ts, (int, float, np.integer, np.floating)):
        return float(ts)
    import pandas as pd

    t = pd.Timestamp(ts)
    if pd.isna(t):
        return float("nan")
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return (t - pd.Timestamp("1970-01-01")).total_seconds()


class ProfileEncoder:
    """A trained encoder ready for live use (recommendation previews, personas).

    ``item_ids``: the vocabulary, in score order. ``next_item_scores(history)`` and
    ``profile_vector(history)`` take a list of (item_id, event_type, ts) in any order (sorted by
    ts when every ts is known; else taken as given, oldest first)."""

    def __init__(self, model, params: dict, item_ids: list[str], config: dict,
                 extra_text: dict[str, np.ndarray], device: str):
        import torch

        self.model, self.params, self.config, self.device = model, params, config, device
        self.item_ids = list(item_ids)
        self.text_model = config.get("text_model")
        self._index = {item: i for i, item in enumerate(self.item_ids)}
        with torch.inference_mode():
            self._E = model.item_matrix()
            self._extra = {}
            if extra_text:
                ids = list(extra_text)
                V = torch.as_tensor(np.stack([extra_text[i] for i in ids]), device=device)
                R = model.text_item(V)
                self._extra = {item: R[k] for k, item in enumerate(ids)}
            self._bias = model.item_bias.detach().float().cpu().numpy()

    @property
    def dim(self) -> int:
        return int(self.model.d)

    def _inputs(self, history):
        import torch

        from core.encoder.model import TYPE_CODES, gap_buckets

        rows = list(history or [])
        secs = np.array([_seconds(r[2] if len(r) > 2 else None) for r in rows], dtype=np.float64)
        if len(rows) and np.isfinite(secs).all():
            order = np.argsort(secs, kind="stable")
            rows = [rows[i] for i in order]
            secs = secs[order]
        vecs, types, kept = [], [], []
        for k_row, (item, etype, *_) in enumerate(rows):
            code = TYPE_CODES.get(str(etype).lower())
            if code is None:
                raise ValueError(
                    f"Unknown event type {etype!r} in the history (item {item!r}); use one of "
                    f"{', '.join(TYPE_CODES)}."
                )
            k = self._index.get(str(item))
            if k is not None:
                v = self._E[k + 1]
            elif str(item) in self._extra:
                v = self._extra[str(item)]
            else:
                continue  # unknown item without cached text: skipped
            vecs.append(v)
            types.append(code)
            kept.append(k_row)
        # gaps between the interactions the model sees (as in training)
        ks = secs[kept] if kept else secs[:0]
        gb = gap_buckets(np.concatenate([[np.nan], np.diff(ks)])).tolist() if kept else []
        L = self.model.max_len
        vecs, types, gb = vecs[-L:], types[-L:], gb[-L:]
        if not vecs:
            return None
        # left-padded to max_len, as in training and in the stored profiles: the latest
        # interaction is always at the last position. Unpadded, a shopper with 10 interactions
        # had them at positions 0-9, which the model never saw them at (the encoder's NDCG@10 on
        # Online Retail's held-out baskets: 0.1327 -> 0.1345 repeats, 0.0509 -> 0.0519 new).
        pad = L - len(vecs)
        V = torch.stack(vecs)
        if pad:
            V = torch.cat([V.new_zeros((pad, V.shape[1])), V])
        return (V[None],
                torch.as_tensor([[0] * pad + types], device=self.device),
                torch.as_tensor([[0] * pad + gb], device=self.device))

    def _hidden(self, history):
        import torch

        x = self._inputs(history)
        if x is None:
            return None, None
        with torch.inference_mode(), _autocast(self.device):
            return self.model.encode(*x), x[1]

    def next_item_scores(self, history) -> np.ndarray:
        """(len(item_ids),) float32 scores, higher = more likely next. An empty history (or one
        with only unknown items) gives the learned popularity prior."""
        import torch

        with one_torch_thread():
            h, _ = self._hidden(history)
            if h is None:
                return self._bias.astype(np.float32, copy=True)
            with torch.inference_mode(), _autocast(self.device):
                s = self.model.scores(h[0, -1], self._E)
            return s.float().cpu().numpy()

    def next_item_scores_many(self, histories, batch: int = 256) -> np.ndarray:
        """``next_item_scores`` of each history, (len(histories), len(item_ids)) float32: one
        forward pass per ``batch`` shoppers instead of one each (the offline evaluation scores
        thousands)."""
        import torch

        out = np.repeat(self._bias.astype(np.float32)[None], len(histories), axis=0)
        inputs = [(r, x) for r, x in ((r, self._inputs(h)) for r, h in enumerate(histories))
                  if x is not None]
        with one_torch_thread(), torch.inference_mode(), _autocast(self.device):
            for a in range(0, len(inputs), batch):
                part = inputs[a:a + batch]
                V, T, G = (torch.cat(c) for c in zip(*(x for _, x in part)))
                h = self.model.encode(V, T, G, last=True)[:, -1]
                out[[r for r, _ in part]] = self.model.scores(h, self._E).float().cpu().numpy()
        return out

    def profile_vector(self, history) -> np.ndarray:
        """The shopper's sequence representation (unit length; zeros for an empty history) —
        the sequence block of their profile before fusion with behaviour features."""
        import torch

        with one_torch_thread():
            h, types = self._hidden(history)
            if h is None:
                return np.zeros(self.dim, dtype=np.float32)
            with torch.inference_mode():
                v = self.model.pool(h.float(), types, self.params["pooling"])[0]
                v = torch.nn.functional.normalize(v, dim=-1)
            return v.cpu().numpy().astype(np.float32)

    def fused_profile(self, history, features: np.ndarray) -> np.ndarray:
        """The full profile vector (same space as the ``profiles`` table) for a shopper given
        their history and their standardised behaviour features (a row of feature_matrix)."""
        fusion = self.config.get("fusion")
        if not fusion:
            raise ValueError("This encoder's run has no profiles yet (compute_profiles not run).")
        s = self.profile_vector(history).astype(np.float64)
        x = np.asarray(features, dtype=np.float64)
        return np.concatenate([
            fusion["seq_scale"] * (s - np.asarray(fusion["seq_mean"])),
            fusion["feature_scale"] * (x - np.asarray(fusion["feature_mean"])),
        ]).astype(np.float32)


def load_encoder(con, run_id: int, device: str = "cpu") -> ProfileEncoder:
    """The run's trained encoder, with text vectors for catalogue items outside its vocabulary
    (items added after training) so they can still appear in a history."""
    from core.embed import _ITEMS_SQL, resolve_device

    dev = resolve_device(device)
    config, weights, item_ids = _read_checkpoint(con, run_id)
    model, p = _build_model(config, weights, dev)
    extra = {
        item: np.asarray(vec, dtype=np.float32)
        for item, vec in con.execute(
            f"""
            SELECT t.item_id, any_value(e.vector)
            FROM ({_ITEMS_SQL}) t
            JOIN item_embeddings e ON e.model = ? AND e.text_hash = t.text_hash
            WHERE t.text <> '' AND t.item_id NOT IN
                  (SELECT item_id FROM encoder_items WHERE run_id = ?)
            GROUP BY t.item_id
            """,
            [config.get("text_model"), run_id],
        ).fetchall()
    }
    return ProfileEncoder(model, p, item_ids, config, extra, dev)
