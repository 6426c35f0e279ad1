"""Predictions per shopper: likely to buy, to buy a goal, to churn, and predicted spend.

See ``stage`` for the scores and the backtest protocol, ``windows`` for features and labels at a
cut-off (no look-ahead), ``models`` for the models and baselines, ``metrics`` for the figures and
``read`` for what the CLI and the dashboard show. Names load on first use, so ``read`` stays light.
"""

from __future__ import annotations

import importlib

_EXPORTS = {"build_predictions": "stage", "start_encoder": "stage", "TITLES": "read", "backtest_table": "read",
            "shopper_scores": "read", "reliability_table": "read", "scores_table": "read"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"core.predictions.{mod}"), name)
