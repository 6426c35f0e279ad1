"""`segstudio predictions`: the backtest of the latest build's per-shopper predictions."""

from __future__ import annotations

from core.cli import print_json, require_build

HELP = "how well the per-shopper predictions (buy, goal, churn, spend) did in the backtest"
DESCRIPTION = """\
Show, for the latest complete build, each prediction stored per shopper (likely to buy, likely to
buy the goal, likely to churn, predicted spend), its definition and horizon, and how it did in the
backtest against a simple baseline computed in the same run: the models are fitted on the shop's
history before the latest horizon and judged on what shoppers did in that held-out horizon.

  AUC                 how well the score ranks who did it above who did not (0.5 = chance)
  top-10% lift        how many times the shop's rate the 10 % highest scores achieved
  calibration error   average gap between predicted and observed rates (lower is better)
  mean absolute error for predicted spend, per shopper (lower is better)

Baselines: days since the last visit (buy, goal) or order (churn), the usual recency rank;
the shopper's average historic spend per day times the horizon (spend).

Examples:
  segstudio predictions
  segstudio predictions --json
  segstudio build --goal christmas --horizon 30     (then segstudio predictions)
"""


def add_arguments(parser) -> None:
    pass


def _fmt(metric: str, v, currency: str) -> str:
    if v is None or v != v:
        return "-"
    if metric in ("mae", "rmse", "predicted_total", "actual_total"):
        return f"{currency}{v:,.2f}"
    if metric == "lift_top10":
        return f"{v:.2f}x"
    return f"{v:.3f}"


def run(args, settings) -> int:
    from core.predictions.read import METRIC_WORDS, backtest_table
    from core.store.schema import store_currency

    store = settings.store()
    con = store.read()
    try:
        run_ = require_build(con, store.path)
        rid = run_["run_id"]
        df = backtest_table(con, rid)
        currency = store_currency(con, "£")
        skipped = (run_.get("metrics") or {}).get("predictions", {}).get("skipped", {})
    finally:
        con.close()
    if args.json:
        scores = {}
        for r in df.to_dict("records"):
            s = scores.setdefault(r["score"], {"title": r["title"], "definition": r["definition"],
                                               "horizon_days": r["horizon_days"],
                                               "backtest_shoppers": r["shoppers"],
                                               "positive_rate": r["positive_rate"], "metrics": {}})
            s["metrics"][r["metric"]] = {
                "model": r["model"], "baseline": r["baseline"], "model_better": r["better"],
                **({"model_95": [r["model_low"], r["model_high"]],
                    "baseline_95": [r["baseline_low"], r["baseline_high"]]}
                   if r["metric"] == "auc" else {})}
        print_json({"run_id": rid, "currency": currency, "scores": scores, "skipped": skipped})
        return 0
    if df.empty:
        print(f"Build {rid} has no predictions." + "".join(
            f"\n  {k}: {v}" for k, v in skipped.items()))
        return 0
    print(f"Build {rid}: predictions backtested on the latest horizon, held out from the models")
    for score, g in df.groupby("score", sort=False):
        r0 = g.iloc[0]
        print(f"\n{r0['title']} — {r0['definition']}")
        rate = (f"{r0['positive_rate']:.1%} did it" if score != "value"
                else f"{r0['positive_rate']:.1%} spent something")
        print(f"  backtest: {int(r0['shoppers']):,} shoppers, {rate}")
        print(f"  {'':<52}{'model':>14}{'baseline':>14}")
        for r in g.to_dict("records"):
            words = METRIC_WORDS.get(r["metric"], r["metric"])
            m, b = _fmt(r["metric"], r["model"], currency), _fmt(r["metric"], r["baseline"], currency)
            if r["metric"] == "auc" and r["model_low"] == r["model_low"]:
                m = f"{m} [{r['model_low']:.3f}-{r['model_high']:.3f}]"
                b = f"{b} [{r['baseline_low']:.3f}-{r['baseline_high']:.3f}]"
            flag = {True: "  model better", False: "  baseline better"}.get(r["better"], "")
            print(f"  {words:<52}{m:>14}{b:>14}{flag}")
    for k, v in skipped.items():
        print(f"\n{k}: not computed ({v})")
    return 0
