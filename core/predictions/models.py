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
