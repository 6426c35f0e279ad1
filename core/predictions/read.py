"""What the CLI and the dashboard show of a build's predictions (plain SQL, no model code)."""

from __future__ import annotations

import pandas as pd

TITLES = {"purchase": "Likely to buy", "goal": "Likely to buy the goal",
          "churn": "Likely to churn", "value": "Predicted spend"}
ORDER = ["purchase", "goal", "churn", "value"]
METRIC_WORDS = {"auc": "AUC (ranking, 0.5 = chance)", "lift_top10": "top-10% lift",
                "calibration_error": "calibration error (lower is better)",
                "mae": "mean absolute error per shopper (lower is better)",
                "rmse": "root mean square error per shopper (lower is better)",
                "predicted_total": "predicted total", "actual_total": "actual total"}
LOWER_IS_BETTER = {"calibration_error", "mae", "rmse"}


def has_predictions(con) -> bool:
    """Stores built before predictions existed have no prediction tables."""
    return bool(con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND table_name = 'prediction_backtest'").fetchone()[0])


def backtest_table(con, run_id: int) -> pd.DataFrame:
    """One row per score and metric: model, baseline (95 % AUC intervals), shoppers, horizon."""
    if not has_predictions(con):
        return pd.DataFrame(columns=["score", "title", "definition", "horizon_days", "metric",
                                     "model", "baseline", "model_low", "model_high",
                                     "baseline_low", "baseline_high", "shoppers",
                                     "positive_rate", "better"])
    df = con.execute(
        "SELECT * EXCLUDE (run_id) FROM prediction_backtest WHERE run_id = ? ORDER BY "
        "list_position(?, score), rowid", [run_id, ORDER]).df()
    if len(df):
        df["better"] = [
            (m < b) if k in LOWER_IS_BETTER else (m > b)
            if k not in ("predicted_total", "actual_total") else None
            for k, m, b in zip(df["metric"], df["model"], df["baseline"])]
    return df


def reliability_table(con, run_id: int, score: str) -> pd.DataFrame:
    return con.execute(
        "SELECT model, bin, predicted, observed, shoppers FROM prediction_reliability "
        "WHERE run_id = ? AND score = ? ORDER BY model, bin", [run_id, score]).df()


def shopper_scores(con, run_id: int, user_id: str) -> pd.DataFrame:
    """A shopper's scores with percentile and reasons, in display order."""
    if not has_predictions(con):
        return pd.DataFrame(columns=["score", "value", "percentile", "reasons"])
    return con.execute(
        "SELECT score, value, percentile, reasons FROM predictions WHERE run_id = ? AND "
        "user_id = ? ORDER BY list_position(?, score)", [run_id, str(user_id), ORDER]).df()


def scores_table(con, run_id: int) -> pd.DataFrame:
    """Every shopper's scores, one column per score (value) and per percentile ('<score>_pct')."""
    if not has_predictions(con):
        return pd.DataFrame(index=pd.Index([], name="user_id"))
    df = con.execute(
        "SELECT user_id, score, value, percentile FROM predictions WHERE run_id = ?",
        [run_id]).df()
    if df.empty:
        return pd.DataFrame(index=pd.Index([], name="user_id"))
    wide = df.pivot(index="user_id", columns="score", values=["value", "percentile"])
    wide.columns = [s if k == "value" else f"{s}_pct" for k, s in wide.columns]
    return wide.sort_index()
