"""Why a shopper scores high: ``push_reasons``, the figures that raise their probability most.

A reason is a feature whose move to the shop's median lowers the shopper's probability by at least
0.01; each shopper gets the two largest such drops, in words a marketer reads. It is computed
exactly for every shopper, with three shortcuts that change no result:

* a shopper whose probability is within 0.01 of the lowest the model can give cannot lose 0.01
  (a third of shoppers for "likely to buy" on the demo shop);
* the trees see a figure only through which side of their split points it lies on
  (``_codes``), so a shopper on the median's side of every split of a feature loses nothing;
* only the trees that split on a feature are run again (``_Trees``; about half of them per
  feature): the others' leaves are kept, and the sum is redone in the model's own order, so the
  probability is the model's to the last bit (checked on every call, else the plain rescoring).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _fmt(v: float) -> str:
    if not np.isfinite(v):
        return "none yet"
    return f"{v:,.0f}" if abs(v) >= 10 or float(v).is_integer() else f"{v:,.2f}"


def _split_points(estimator, n_cols: int) -> list[np.ndarray] | None:
    """Every threshold each column is split at in a fitted HistGradientBoosting model (its
    trees' nodes), or None where that cannot be read (categorical splits, another model)."""
    try:
        trees = [t for it in estimator._predictors for t in it]
    except AttributeError:
        return None
    points: list[list] = [[] for _ in range(n_cols)]
    for t in trees:
        inner = t.nodes[t.nodes["is_leaf"] == 0]
        if inner["is_categorical"].any():
            return None
        for f, v in zip(inner["feature_idx"], inner["num_threshold"]):
            points[int(f)].append(float(v))
    return [np.unique(np.asarray(p, float)) for p in points]


def _codes(x: np.ndarray, points: np.ndarray | None) -> np.ndarray:
    """Per value, which side of every threshold it lies on (the number of thresholds below
    it: the trees send two values with the same code the same way, as ``x <= t`` goes left);
    without thresholds, the value itself. Missing values get a code of their own."""
    nan = np.isnan(x)
    if points is not None:
        c = np.searchsorted(points, x, side="left").astype(np.int64)
        c[nan] = len(points) + 1
        return c
    c = pd.factorize(x)[0].astype(np.int64)   # NaN -> -1
    return np.where(nan, c.max(initial=-1) + 1, c)


class _Trees:
    """The probability of a calibrated binary HistGradientBoosting model from its trees' leaf
    values, summed in the model's own order (so equal, bit for bit, to ``predict_proba``), so
    that changing one feature reruns only the trees that split on it."""

    def __init__(self, one, n_cols: int):
        from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

        est = one.estimator
        if est.n_trees_per_iteration_ != 1 or len(one.classes) != 2 or \
                one.method not in ("isotonic", "sigmoid"):
            raise ValueError("not a binary calibrated tree model")
        self.trees = [it[0] for it in est._predictors]
        self.cats = est._bin_mapper.make_known_categories_bitsets()
        self.baseline = est._baseline_prediction
        self.calibrator = one.calibrators[0]
        self.threads = _openmp_effective_n_threads()
        self.uses = np.zeros((len(self.trees), n_cols), bool)
        for i, t in enumerate(self.trees):
            self.uses[i, t.nodes["feature_idx"][t.nodes["is_leaf"] == 0]] = True
        # the lowest probability the model gives (isotonic: its lowest step; sigmoid: above 0)
        self.lowest = float(np.min(self.calibrator.y_thresholds_)) \
            if one.method == "isotonic" else 0.0

    def leaves(self, A: np.ndarray, which: np.ndarray) -> np.ndarray:
        A = np.ascontiguousarray(A, dtype=np.float64)
        out = np.empty((len(A), len(which)))
        for c, t in enumerate(which):
            out[:, c] = self.trees[t].predict(A, *self.cats, self.threads)
        return out

    def proba(self, leaves: np.ndarray) -> np.ndarray:
        raw = np.zeros((len(leaves), 1), dtype=self.baseline.dtype, order="F")
        raw += self.baseline
        for t in range(leaves.shape[1]):
            raw[:, 0] += leaves[:, t]
        return self.calibrator.predict(raw.T[0])


def _trees(one, n_cols: int, probe: np.ndarray):
    """``_Trees`` of ``one`` if it reproduces ``one.predict_proba`` exactly on ``probe`` rows;
    else None (another model, or a scikit-learn whose internals differ): plain rescoring."""
    try:
        tr = _Trees(one, n_cols)
        every = np.arange(len(tr.trees))
        if np.array_equal(tr.proba(tr.leaves(probe, every)), one.predict_proba(probe)[:, 1]):
            return tr
    except Exception:    # noqa: BLE001 (private internals: anything means "not usable")
        pass
    return None


def push_reasons(model, X: pd.DataFrame, words: dict[str, str], top: int = 2,
                 chunk: int = 100_000) -> list[list[str]]:
    """For each shopper, the features that raise their probability the most against a typical
    shopper: the drop in probability when one feature is set to the shop's median, largest
    first (only features that raise it by at least 0.01). See the module doc for how."""
    if getattr(model, "model_", None) is None or len(X) == 0:
        return [[] for _ in range(len(X))]
    cols = list(model.columns_)
    named = [j for j, c in enumerate(cols) if c in words]   # reasons a marketer can read
    med = X[cols].median(numeric_only=True)
    # One of the calibrated cross-validation models explains as well as their average, at a
    # third of the cost.
    one = model.model_.calibrated_classifiers_[0]
    points = _split_points(getattr(one, "estimator", None), len(cols))
    medians = np.array([med.get(c, np.nan) for c in cols], dtype=float)
    tr = _trees(one, len(cols), X.iloc[:64][cols].to_numpy(float))
    every = np.arange(len(tr.trees)) if tr is not None else None
    out: list[list[str]] = []
    for s in range(0, len(X), chunk):
        vals = X.iloc[s:s + chunk][cols].to_numpy(float)
        if tr is not None:
            leaves = tr.leaves(vals, every)
            base = tr.proba(leaves)
            # no drop can reach 0.01 where the probability is within 0.01 of the lowest
            alive = base - tr.lowest >= 0.01
        else:
            base = one.predict_proba(vals)[:, 1] if len(vals) else np.zeros(0)
            alive = np.ones(len(vals), bool)
        deltas = np.full((len(vals), len(cols)), -np.inf)
        for j in named:
            deltas[:, j] = 0.0
            if points is not None and not len(points[j]):
                continue   # no tree splits on it: setting it to the median changes nothing
            # a shopper on the median's side of every split of this feature: nothing changes
            # (a drop of exactly 0); only the others are scored again
            m = medians[j]
            col = _codes(np.append(vals[:, j], m), None if points is None else points[j])
            rows = np.flatnonzero((col[:-1] != col[-1]) & alive)
            if not len(rows):
                continue
            alt = vals[rows].copy()
            alt[:, j] = m
            if tr is not None:
                redo = np.flatnonzero(tr.uses[:, j])
                lv = leaves[rows]
                lv[:, redo] = tr.leaves(alt, redo)
                deltas[rows, j] = base[rows] - tr.proba(lv)
            else:
                deltas[rows, j] = base[rows] - one.predict_proba(alt)[:, 1]
        order = np.argsort(-deltas, axis=1, kind="stable")[:, :top]  # ties: column order
        for r in range(len(vals)):
            out.append([f"{words.get(cols[j], cols[j])}: {_fmt(vals[r, j])}"
                        for j in order[r] if deltas[r, j] >= 0.01] if alive[r] else [])
    return out
