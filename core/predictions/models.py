"""The prediction models and their simple baselines, scikit-learn style.

* ``LikelihoodModel``: gradient-boosted trees (scikit-learn's HistGradientBoostingClassifier, which
  takes missing figures as they are) with isotonic calibration by cross-validation
  (CalibratedClassifierCV), so that "0.3" means 3 in 10 such shoppers do it.
* ``ValueModel``: gradient-boosted trees with a Poisson loss on the spend in the horizon (most
  shoppers spend nothing; the Poisson loss predicts the expected spend, zeros included).
* ``RecencyBaseline``: the rank a marketer would use without a model (days since the last visit or
  order), turned into a probability by isotonic regression on the same training window.
* ``SpendRateBaseline``: the shopper's average historic spend per day times the horizon.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.isotonic import IsotonicRegression


def informative_columns(X: pd.DataFrame) -> list[str]:
    """Columns with at least two distinct known values (a constant or empty column says nothing,
    e.g. the goal's figures when no goal is set)."""
    return [c for c in X.columns if X[c].nunique(dropna=True) > 1]


class _Trees:
    """Shared parameters of the gradient-boosted models (scikit-learn style: set here, learned
    state in trailing-underscore attributes by ``fit``)."""

    def __init__(self, seed: int = 42, max_iter: int = 100, learning_rate: float = 0.06,
                 max_leaf_nodes: int = 15, min_samples_leaf: int = 40):
        self.seed = seed
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf

    def _leaf(self, n: int) -> int:
        return min(self.min_samples_leaf, max(5, n // 50))


class LikelihoodModel(_Trees):

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> "LikelihoodModel":
        y = np.asarray(y, int)
        self.columns_ = informative_columns(X)
        self.base_rate_ = float(y.mean())
        minority = int(min(y.sum(), len(y) - y.sum()))
        if minority < 6 or not self.columns_:
            # Too few examples of one outcome to learn anything: the shop's rate for everyone.
            self.model_ = None
            return self
        trees = HistGradientBoostingClassifier(
            max_iter=self.max_iter, learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self._leaf(len(y)),
            l2_regularization=1.0, random_state=self.seed)
        method = "isotonic" if minority >= 200 else "sigmoid"
        self.model_ = CalibratedClassifierCV(trees, method=method, cv=3).fit(
            X[self.columns_].to_numpy(), y)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if self.model_ is None:
            return np.full(len(X), self.base_rate_)
        return self.model_.predict_proba(X[self.columns_].to_numpy())[:, 1]


class ValueModel(_Trees):

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> "ValueModel":
        y = np.clip(np.asarray(y, float), 0, None)
        self.columns_ = informative_columns(X)
        self.mean_ = float(y.mean())
        if (y > 0).sum() < 6 or not self.columns_:
            self.model_ = None
            return self
        self.model_ = HistGradientBoostingRegressor(
            loss="poisson", max_iter=self.max_iter, learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self._leaf(len(y)),
            l2_regularization=1.0, random_state=self.seed).fit(X[self.columns_].to_numpy(), y)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if self.model_ is None:
            return np.full(len(X), self.mean_)
        return self.model_.predict(X[self.columns_].to_numpy())


class RecencyBaseline:
    """Probability from one recency column by isotonic regression: ``increasing`` says whether
    more days mean more likely (churn) or less (purchase)."""

    def __init__(self, column: str, increasing: bool):
        self.column = column
        self.increasing = increasing

    def _x(self, X: pd.DataFrame) -> np.ndarray:
        x = X[self.column].to_numpy(float)
        # never ordered: as if the last order was before everything we know of
        fill = np.nanmax(x) + 1 if np.isfinite(x).any() else 0.0
        return np.where(np.isfinite(x), x, fill)

    def rank_score(self, X: pd.DataFrame) -> np.ndarray:
        x = self._x(X)
        return x if self.increasing else -x

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> "RecencyBaseline":
        self.iso_ = IsotonicRegression(increasing=self.increasing, out_of_bounds="clip",
                                       y_min=0.0, y_max=1.0).fit(self._x(X), np.asarray(y, float))
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.iso_.predict(self._x(X))


class SpendRateBaseline:
    def __init__(self, horizon_days: float):
        self.horizon_days = horizon_days

    def fit(self, X, y) -> "SpendRateBaseline":
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        spend = X["spend"].fillna(0.0).clip(lower=0.0).to_numpy(float)
        days = np.maximum(X["tenure_days"].to_numpy(float), self.horizon_days)
        return spend / days * self.horizon_days


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


def _row_groups(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each distinct code row, each row's group): rows with the same codes in
    every column get the same prediction."""
    n = len(codes)
    key = np.zeros(n, np.int64)
    for j in range(codes.shape[1]):
        key = pd.factorize(key * (int(codes[:, j].max(initial=0)) + 1) + codes[:, j])[0]
    first = np.full(int(key.max(initial=-1)) + 1, n, np.int64)
    np.minimum.at(first, key, np.arange(n))
    return first, key


def push_reasons(model, X: pd.DataFrame, words: dict[str, str], top: int = 2,
                 chunk: int = 250_000) -> list[list[str]]:
    """For each shopper, the features that raise their probability the most against a typical
    shopper: the drop in probability when one feature is set to the shop's median, largest
    first (only features that raise it by at least 0.01).

    Exact, without rescoring everyone once per feature: the trees see a figure only through
    which side of their split points it lies on (``_codes``), so a shopper on the same side of
    every split as the median loses nothing (a drop of exactly 0), and shoppers whose figures
    lie on the same sides everywhere share one prediction, computed once (``_row_groups``).
    On a million shoppers most share their side of the median for most features."""
    if getattr(model, "model_", None) is None or len(X) == 0:
        return [[] for _ in range(len(X))]
    cols = list(model.columns_)
    named = [j for j, c in enumerate(cols) if c in words]   # reasons a marketer can read
    med = X[cols].median(numeric_only=True)
    # One of the calibrated cross-validation models explains as well as their average, at a
    # third of the cost.
    one = model.model_.calibrated_classifiers_[0]
    points = _split_points(getattr(one, "estimator", None), len(cols))

    def proba(A):
        """Probabilities of the rows of A, each distinct code row scored once."""
        if not len(A):
            return np.zeros(0)
        codes = np.column_stack([_codes(A[:, j], None if points is None else points[j])
                                 for j in range(A.shape[1])])
        first, group = _row_groups(codes)
        return one.predict_proba(A[first])[:, 1][group]

    medians = np.array([med.get(c, np.nan) for c in cols], dtype=float)
    out: list[list[str]] = []
    for s in range(0, len(X), chunk):
        vals = X.iloc[s:s + chunk][cols].to_numpy(float)
        base = proba(vals)
        deltas = np.full((len(vals), len(cols)), -np.inf)
        for j in named:
            deltas[:, j] = 0.0
            if points is not None and not len(points[j]):
                continue   # no tree splits on it: setting it to the median changes nothing
            # a shopper on the median's side of every split of this feature: nothing changes
            # (a drop of exactly 0); only the others are scored again
            m = medians[j]
            pj = None if points is None else points[j]
            col = _codes(np.append(vals[:, j], m), pj)
            rows = np.flatnonzero(col[:-1] != col[-1])
            alt = vals[rows].copy()
            alt[:, j] = m
            deltas[rows, j] = base[rows] - proba(alt)
        order = np.argsort(-deltas, axis=1, kind="stable")[:, :top]  # ties: column order
        for r in range(len(vals)):
            out.append([f"{words.get(cols[j], cols[j])}: {_fmt(vals[r, j])}"
                        for j in order[r] if deltas[r, j] >= 0.01])
    return out
