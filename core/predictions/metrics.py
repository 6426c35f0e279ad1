"""Backtest figures for a score: ranking (AUC, top-decile lift), calibration, value error."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def auc(y: np.ndarray, s: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) formula, ties counted half:
    the chance that a random shopper who did it scores above one who did not."""
    y = np.asarray(y).astype(bool)
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(np.asarray(s, float))
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def auc_interval(y: np.ndarray, s: np.ndarray, seed: int = 0, n_boot: int = 200,
                 level: float = 0.95) -> tuple[float, float]:
    """Bootstrap over shoppers (percentile interval); NaN where a resample has one class only."""
    y, s = np.asarray(y), np.asarray(s)
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        if y[i].min() != y[i].max():
            vals.append(auc(y[i], s[i]))
    if not vals:
        return float("nan"), float("nan")
    a = (1 - level) / 2
    return float(np.quantile(vals, a)), float(np.quantile(vals, 1 - a))


def top_decile_lift(y: np.ndarray, s: np.ndarray) -> float:
    """Rate of positives among the 10 % highest scores over the overall rate (ties broken by
    order, so a constant score gets 1.0 on average)."""
    y, s = np.asarray(y, float), np.asarray(s, float)
    base = y.mean()
    if base == 0:
        return float("nan")
    n = max(1, int(np.ceil(0.1 * len(y))))
    top = np.argsort(-s, kind="stable")[:n]
    return float(y[top].mean() / base)


def reliability(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> list[dict]:
    """Equal-width probability bins: mean predicted, observed rate and count (non-empty bins)."""
    y, p = np.asarray(y, float), np.clip(np.asarray(p, float), 0, 1)
    b = np.minimum((p * n_bins).astype(int), n_bins - 1)
    out = []
    for k in range(n_bins):
        m = b == k
        if m.any():
            out.append({"bin": k, "predicted": float(p[m].mean()), "observed": float(y[m].mean()),
                        "shoppers": int(m.sum())})
    return out


def calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error: the count-weighted mean |predicted - observed| over bins."""
    bins = reliability(y, p, n_bins)
    n = sum(b["shoppers"] for b in bins)
    return float(sum(b["shoppers"] * abs(b["predicted"] - b["observed"]) for b in bins) / n)


def value_errors(actual: np.ndarray, predicted: np.ndarray) -> dict:
    a, p = np.asarray(actual, float), np.asarray(predicted, float)
    return {"mae": float(np.abs(a - p).mean()), "rmse": float(np.sqrt(((a - p) ** 2).mean())),
            "predicted_total": float(p.sum()), "actual_total": float(a.sum())}
