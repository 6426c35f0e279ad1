"""The profile encoder's view of each shopper, for the predictions, without look-ahead.

The build's own encoder has learned from purchases after the backtest's cut-off (everything but
each shopper's last basket), so its vectors would leak the held-out horizon into the backtest.
``AsOfEncoder`` therefore trains a profile encoder of its own on the events before the earliest
held-out horizon only (the encoder's training with each shopper's history cut there; the
checkpoint is written under a temporary run id and removed at once), and describes a shopper as of any cut-off
by running it over their history up to that cut-off. The vectors are reduced to ``dims``
principal components fitted on the first cut-off asked for: the predictions stage asks first for the
date the encoder was trained before, so the components see no held-out horizon either.

The build starts it early (``start``: in a background worker, while its own encoder trains on
the other core; ``core.predictions.stage.start_encoder``) and collects it in the predictions
stage (``fit``). Measured on Online Retail (2 cores): the two trainings took 38 s and 40 s one
after the other.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ENCODER_COLUMNS_PREFIX = "taste_"
ENCODE_CHUNK = 16_384   # shoppers encoded at a time (a multiple of the encoder's batch of 512)


def kept_before(con, cut, users: list[str] | None = None) -> dict[str, int]:
    """Each shopper's number of interactions before ``cut``, in the encoder's order (undated
    first, then by time): the first n of their sequence. ``users``: only these shoppers."""
    from core.predictions.windows import only_users

    with only_users(con, users) as who:
        rows = con.execute("SELECT user_id, count(*) FILTER (ts IS NULL OR ts < ?) FROM events "
                           f"WHERE user_id IS NOT NULL AND {who} GROUP BY user_id",
                           [cut]).fetchall()
    return {str(u): int(n) for u, n in rows}


def as_of(seq, keep: dict[str, int], idx=None):
    """The sequences of shoppers ``idx`` (positions in ``seq.user_ids``; default all), each cut
    to its first ``keep[u]`` interactions (none for a shopper not in ``keep``); shares ``seq``'s
    event arrays (``take_users``)."""
    from core.encoder.data import take_users

    sub = take_users(seq, np.arange(len(seq.user_ids)) if idx is None else idx)
    k = np.array([max(int(keep.get(u, 0)), 0) for u in sub.user_ids], dtype=np.int64)
    sub.ends = np.minimum(sub.ends, sub.starts + k)
    return sub


class AsOfEncoder:
    def __init__(self, dims: int = 8, device: str = "cpu", seed: int = 42,
                 text_model: str | None = None, params: dict | None = None):
        self.dims = dims
        self.device = device
        self.seed = seed
        self.text_model = text_model
        self.params = params

    def start(self, con, train_before) -> "AsOfEncoder":
        """Prepare the training and start it in a background worker (``core.engine.background``)
        where there is one: the build trains its own encoder meanwhile, each on one core.
        ``fit`` collects it (or, without a worker, trains here). Same seed, same weights."""
        from core.embed import resolve_device
        from core.encoder.train import prepare_training
        from core.engine.background import worker

        self.device_ = resolve_device(self.device)
        self.train_before_ = train_before
        kw = {"text_model": self.text_model} if self.text_model else {}
        # no mean-of-text baseline: its figure (the build's encoder reports one) is not kept
        self.prep_ = prepare_training(con, device=self.device_, seed=self.seed,
                                      params=self.params, baseline=False,
                                      cutoffs=kept_before(con, train_before), **kw)
        w = worker("encoder")
        self.future_ = (w.submit("core.encoder.loop:fit", self.prep_.job)
                        if w is not None else None)
        return self

    def fit(self, con, run_id: int, train_before) -> "AsOfEncoder":
        from core.encoder.data import load_sequences
        from core.encoder.loop import fit
        from core.encoder.runtime import _build_model, _read_checkpoint
        from core.encoder.train import finish_training

        if getattr(self, "train_before_", None) != train_before:
            self.start(con, train_before)
        fitted, self.trained_in_ = None, "build process"
        if self.future_ is not None:
            try:
                fitted = self.future_.result()
                self.trained_in_ = "background worker"
            except Exception as e:  # the worker died: train here, same seed, same weights
                from core.engine.background import discard

                discard("encoder")
                self.trained_in_ = f"build process (background worker failed: {type(e).__name__})"
        if fitted is None:
            fitted = fit(self.prep_.job)
        tmp = -abs(int(run_id)) - 1_000_000
        try:
            self.train_metrics_ = finish_training(con, tmp, self.prep_, fitted)
            config, weights, item_ids = _read_checkpoint(con, tmp)
            self.model_, self.p_ = _build_model(config, weights, self.device_)
        finally:
            for t in ("model_checkpoints", "encoder_items", "training_curve"):
                con.execute(f"DELETE FROM {t} WHERE run_id = ?", [tmp])
        self.seq_ = load_sequences(con, item_ids)
        self.pca_ = self.pos_ = None
        del self.prep_, self.future_
        return self

    def _vectors(self, part, keep: dict[str, int]) -> np.ndarray:
        """The pooled encoder vector of each shopper of ``part`` as of their first ``keep[u]``
        interactions. A shopper with nothing new between two cut-offs has the same history at
        both: their vector is kept (``vectors_``, by shopper and history length) and read
        again, not recomputed (on Online Retail most shoppers at most of the ~11 cut-offs)."""
        from core.encoder.data import take_users
        from core.encoder.runtime import _pooled

        if not hasattr(self, "vectors_"):
            self.vectors_ = {}
        keys = [(u, int(keep.get(u, 0))) for u in part.user_ids]
        todo = [i for i, key in enumerate(keys) if key not in self.vectors_]
        if todo:
            new = _pooled(self.model_, take_users(part, np.asarray(todo)), self.p_["pooling"],
                          self.device_)
            self.vectors_.update((keys[i], v) for i, v in zip(todo, new))
        return np.stack([self.vectors_[key] for key in keys]) if keys else \
            np.zeros((0, self.model_.d), np.float32)

    def transform(self, con, cut, users: list[str] | None = None,
                  chunk: int = ENCODE_CHUNK) -> pd.DataFrame:
        """One row per shopper with a history before ``cut``: ``taste_1 .. taste_<dims>``.
        ``users``: only these shoppers (default everyone). The encoder runs ``chunk`` shoppers at
        a time and keeps only their ``dims`` components, so memory follows the chunk, not the
        shop; the principal components are fitted on the first call's shoppers (a training
        window), which are pooled whole."""
        from core.encoder.train import torch_settings

        keep = kept_before(con, cut, users)
        if users is None:
            idx = None
        else:
            if self.pos_ is None:
                self.pos_ = {u: i for i, u in enumerate(self.seq_.user_ids)}
            idx = [self.pos_[u] for u in users if u in self.pos_]
        seq = as_of(self.seq_, keep, idx)
        have = np.array([keep.get(u, 0) > 0 for u in seq.user_ids], dtype=bool)
        Ss, Zs = [], []
        # the encoder's thread count, as in training and compute_profiles: with torch's default
        # (every core) a busy machine stalled attention ~15x (64.7 of 93 s on a 600-shopper demo)
        with torch_settings(self.device_, self.seed, None):
            for a in range(0, len(seq.user_ids), chunk):
                rows = range(a, min(a + chunk, len(seq.user_ids)))
                S = self._vectors(as_of(seq, keep, rows), keep)[have[a:a + chunk]]
                if self.pca_ is None:
                    Ss.append(S)
                elif len(S):
                    Zs.append(self.pca_.transform(S))
        if self.pca_ is None:
            from sklearn.decomposition import PCA

            S = np.concatenate(Ss) if Ss else np.zeros((0, self.model_.d), np.float32)
            self.pca_ = PCA(min(self.dims, S.shape[1], max(1, len(S) - 1)),
                            random_state=self.seed).fit(S)
            Zs = [self.pca_.transform(S)]
        users_kept = [u for u, h in zip(seq.user_ids, have) if h]
        Z = np.concatenate(Zs) if Zs else np.zeros((0, self.pca_.n_components_))
        cols = [f"{ENCODER_COLUMNS_PREFIX}{i + 1}" for i in range(Z.shape[1])]
        return pd.DataFrame(Z, index=pd.Index(users_kept, name="user_id"), columns=cols)
