"""The predictions stage: fit, backtest and score every shopper, every build.

Scores (each a probability or an amount over a horizon, stored with its percentile):

* ``purchase``: probability of at least one order in the next H days (default 30);
* ``goal``: probability of an order with an item of the user's goal (a category, theme or title
  phrase, e.g. "christmas") in the next H days — only when a goal is set;
* ``churn``: for shoppers who have ordered, probability of no order in the next C days, C set from
  the shop's own gaps between orders (``windows.churn_horizon_days``);
* ``value``: expected spend in the next H days (shops with prices).

Protocol (the same for every score, with its horizon H): let E be the end of the data,
T0 = E - H and T1 = T0 - H. The backtest fits on features as of T1 with labels from [T1, T0) and
is judged on features as of T0 with labels from [T0, E): the latest horizon is held out, and the
model never sees it. The baseline (recency rank; average historic spend) is fitted and judged on
the same windows. The scores a marketer uses are then refitted on [T0, E) and applied to every
shopper as of E: they predict the H days after the data ends.

Scale: above ``MAX_WINDOW_SHOPPERS`` shoppers the training and backtest windows (features and the
encoder's view at each cut-off, ~11 of them) are computed on one seeded sample of shoppers, the
same at every cut-off, so they cost the same at any shop size; the metrics say so (``sampled``).
The scores still cover every shopper: the one all-shopper frame is the final cut-off's (the
encoder runs over it in chunks), and the percentiles and reasons compare each shopper with all.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from core.predictions.metrics import (auc, auc_interval, calibration_error, reliability,
                                      top_decile_lift, value_errors)
from core.predictions.read import TITLES
from core.predictions.models import (LikelihoodModel, RecencyBaseline, SpendRateBaseline,
                                     ValueModel)
from core.predictions.reasons import push_reasons
from core.predictions.windows import (FEATURE_WORDS, churn_horizon_days, data_end, data_start,
                                      features_as_of, labels_for, match_goal, outcomes_between,
                                      shoppers_with_events)
from core.progress import NULL, Progress

MAX_TRAIN = 200_000     # shopper-windows sampled for fitting (scoring always covers everyone)
TRAIN_WINDOWS = 4       # consecutive horizons stacked for fitting
# Above this many shoppers the training and backtest windows are computed on a seeded sample of
# this many (the same at every cut-off): at 1 M shoppers each window's features and encoder run
# would otherwise take minutes, ~11 of them. The scores still cover everyone.
MAX_WINDOW_SHOPPERS = 20_000
# Above this many shoppers the models use the behaviour features only, not the predictions' own
# profile encoder: at a million shoppers its training, its view of every window and of every
# shopper at the final cut-off took ~10 minutes of a 30-minute build (its forward pass over
# everyone alone ~6). The run says so (``encoder``).
ENCODER_MAX_SHOPPERS = 200_000


def encoder_note(n_shoppers: int) -> dict:
    return {"skipped": f"{n_shoppers:,} shoppers: above {ENCODER_MAX_SHOPPERS:,} the predictions "
                       "use the behaviour features only (the encoder's view of every shopper at "
                       "every date would take a third of the build)",
            "scale": True}



def _definition(name: str, horizon: float, goal_text: str = "", churn_how: str = "") -> str:
    h = f"{horizon:.0f} days"
    return {
        "purchase": f"Probability of at least one order in the next {h}.",
        "goal": f"Probability of an order with {goal_text} in the next {h}.",
        "churn": (f"For shoppers who have ordered: probability of no order in the next {h} "
                  f"(churn horizon {churn_how})."),
        "value": f"Expected spend in the next {h} (zero for most shoppers).",
    }[name]


class _Windows:
    """Features per cut-off, computed once per (cut, goal): the behaviour figures and, with an
    ``encoder`` (``encoded.AsOfEncoder``, trained before every held-out horizon), the profile
    encoder's view of the shopper as of the same cut-off. ``users``: the shoppers the training
    and backtest windows are computed on (None: everyone; a large shop's sample,
    ``_window_shoppers``); ``final`` is every shopper at the end of the data, for the scores."""

    def __init__(self, con, goal_items, encoder=None, users=None):
        self.con, self.goal_items, self.encoder, self.users = con, goal_items, encoder, users
        self._f, self._final = {}, None

    def _compute(self, cut, users):
        f = features_as_of(self.con, cut, self.goal_items, users=users)
        if self.encoder is not None:
            f = f.join(self.encoder.transform(self.con, cut, users=users), how="left")
        return f

    def features(self, cut):
        if cut not in self._f:
            self._f[cut] = self._compute(cut, self.users)
        return self._f[cut]

    def final(self, end):
        """Every shopper as of ``end``: the one all-shopper frame, kept until ``forget()``."""
        if self._final is None:
            self._final = self._compute(end, None)
        return self._final

    def forget(self, keep=None):
        """Drop the cached windows but those at the cuts in ``keep`` (the scores still to come
        read them); without ``keep``, everything, the final frame too."""
        self._f = {c: f for c, f in self._f.items() if keep is not None and c in keep}
        if keep is None:
            self._final = None

    def labels(self, cut, end):
        f = self.features(cut)
        return f, labels_for(f, outcomes_between(self.con, cut, end, self.goal_items,
                                                 users=self.users))


def _window_shoppers(con, seed: int) -> tuple[list[str] | None, int]:
    """The shoppers the training and backtest windows are computed on, and how many shoppers
    there are: everyone up to ``MAX_WINDOW_SHOPPERS``; above it one seeded sample of that many,
    the same at every cut-off, so a window costs the same at any shop size."""
    users = shoppers_with_events(con)
    if len(users) <= MAX_WINDOW_SHOPPERS:
        return None, len(users)
    pick = np.random.default_rng(seed).choice(len(users), MAX_WINDOW_SHOPPERS, replace=False)
    return [users[i] for i in np.sort(pick)], len(users)


def _sampled_note(k: int, n: int) -> dict:
    return {"shoppers": k, "of": n,
            "why": f"the models were trained and backtested on a random sample of {k:,} of the "
                   f"{n:,} shoppers (the same shoppers at every date), so learning and checking "
                   "take the same time at any shop size; the backtest figures are the sample's, "
                   "and every shopper still gets a score"}


def _sample(n: int, seed: int) -> np.ndarray:
    if n <= MAX_TRAIN:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, MAX_TRAIN, replace=False))


def _classifier(name, X_tr, y_tr, X_te, y_te, baseline, seed):
    i = _sample(len(X_tr), seed)
    model = LikelihoodModel(seed=seed).fit(X_tr.iloc[i], y_tr[i])
    base = baseline.fit(X_tr, y_tr)
    p, b = model.predict_proba(X_te), base.predict_proba(X_te)
    rank = base.rank_score(X_te)
    lo, hi = auc_interval(y_te, p, seed=seed)
    blo, bhi = auc_interval(y_te, rank, seed=seed)
    rows = [("auc", auc(y_te, p), auc(y_te, rank), lo, hi, blo, bhi),
            ("lift_top10", top_decile_lift(y_te, p), top_decile_lift(y_te, rank),
             None, None, None, None),
            ("calibration_error", calibration_error(y_te, p), calibration_error(y_te, b),
             None, None, None, None)]
    rel = {"model": reliability(y_te, p), "baseline": reliability(y_te, b)}
    return rows, rel


def _value(X_tr, y_tr, X_te, y_te, horizon, seed):
    i = _sample(len(X_tr), seed)
    model = ValueModel(seed=seed).fit(X_tr.iloc[i], y_tr[i])
    m = value_errors(y_te, model.predict(X_te))
    b = value_errors(y_te, SpendRateBaseline(horizon).predict(X_te))
    return [("mae", m["mae"], b["mae"], None, None, None, None),
            ("rmse", m["rmse"], b["rmse"], None, None, None, None),
            ("predicted_total", m["predicted_total"], b["predicted_total"], None, None, None, None),
            ("actual_total", m["actual_total"], m["actual_total"], None, None, None, None)]


def _xy(w: _Windows, name: str, cut, until):
    """Features as of ``cut`` and the score's label over [cut, until), for its population."""
    X, L = w.labels(cut, until)
    if name == "churn":
        keep = (X["orders"] > 0).to_numpy()
        return X[keep], (1 - L["bought"]).to_numpy()[keep]
    return X, L[{"purchase": "bought", "goal": "bought_goal", "value": "spend"}[name]].to_numpy()


def _cuts(last_cut, h: float, start, n_windows: int) -> list:
    """The cut-offs last_cut, last_cut - h, ... (up to ``n_windows``) with some history before
    each."""
    cuts = [last_cut - timedelta(days=h * k) for k in range(n_windows)]
    return [c for c in cuts if c > start + timedelta(days=min(h, 30))]


def _stacked(w: _Windows, name: str, last_cut, h: float, start, n_windows: int):
    """Training rows from up to ``n_windows`` consecutive windows ending at ``last_cut + h``
    (``_cuts``): several windows make the model see more than one season's moment."""
    Xs, ys = [], []
    for cut in _cuts(last_cut, h, start, n_windows):
        X, y = _xy(w, name, cut, cut + timedelta(days=h))
        Xs.append(X)
        ys.append(y)
    if not Xs:
        return None, None
    return pd.concat(Xs), np.concatenate(ys)


def _score_cuts(h: float, start, end) -> set:
    """Every cut-off ``_score`` reads windows at for a horizon of ``h`` days."""
    t0 = end - timedelta(days=h)
    return {*_cuts(t0 - timedelta(days=h), h, start, TRAIN_WINDOWS), t0,
            *_cuts(t0, h, start, TRAIN_WINDOWS)}


def _score(w, name, h, start, end, goal_items, goal_text, churn_how, run_id, seed,
           scored, backtest, rel_rows, out) -> str | None:
    """Backtest one score, refit it on the latest windows and score everyone; return why not."""
    if name == "goal" and not goal_items:
        return goal_text
    t0 = end - timedelta(days=h)
    X_tr, y_tr = _stacked(w, name, t0 - timedelta(days=h), h, start, TRAIN_WINDOWS)
    if X_tr is None:
        return (f"the data spans {(end - start).days} days; backtesting a {h:.0f}-day horizon "
                f"needs more than {2 * h + min(h, 30):.0f}")
    X_te, y_te = _xy(w, name, t0, end)
    if len(X_tr) < 20 or len(X_te) < 20:
        return (f"too few shoppers to backtest ({len(X_tr)} and {len(X_te)} in the training and "
                "held-out windows; at least 20 each)")
    X_fit, y_fit = _stacked(w, name, t0, h, start, TRAIN_WINDOWS)
    X_now = w.final(end)
    if name == "churn":
        X_now = X_now[X_now["orders"] > 0]
    s = _sample(len(X_fit), seed)
    if name == "value":
        rows = _value(X_tr, y_tr, X_te, y_te, h, seed)
        values = ValueModel(seed=seed).fit(X_fit.iloc[s], y_fit[s]).predict(X_now)
        reasons = [[] for _ in range(len(X_now))]
    else:
        col, inc = ("days_since_order", True) if name == "churn" else ("days_since_activity", False)
        rows, rel = _classifier(name, X_tr, y_tr, X_te, y_te, RecencyBaseline(col, inc), seed)
        for who, bins in rel.items():
            rel_rows += [(run_id, name, who, r["bin"], r["predicted"], r["observed"],
                          r["shoppers"]) for r in bins]
        final = LikelihoodModel(seed=seed).fit(X_fit.iloc[s], y_fit[s])
        values = final.predict_proba(X_now)
        reasons = push_reasons(final, X_now, FEATURE_WORDS)
    definition = _definition(name, h, goal_text, churn_how)
    positives = float(np.mean(y_te > 0))
    for metric, mv, bv, lo, hi, blo, bhi in rows:
        backtest.append((run_id, name, TITLES[name], definition, float(h), metric, mv, bv,
                         lo, hi, blo, bhi, len(X_te), positives))
    scored.append(pd.DataFrame({"run_id": run_id, "user_id": X_now.index, "score": name,
                                "value": values, "percentile": _percentile(values),
                                "reasons": reasons}))
    out["scores"][name] = {"title": TITLES[name], "definition": definition, "horizon_days": h,
                           "shoppers_scored": len(X_now), "backtest_shoppers": len(X_te),
                           "training_rows": len(X_tr), "backtest_positive_rate": positives,
                           **{m: {"model": mv, "baseline": bv} for m, mv, bv, *_ in rows}}
    return None


def _percentile(v: np.ndarray) -> np.ndarray:
    return pd.Series(v).rank(pct=True, method="average").to_numpy() * 100


def _plan(con, run_id: int, horizon_days: float, goal: str | None):
    """The scores to make (name, horizon in days) and what is known before making them."""
    end, start = data_end(con), data_start(con)
    out: dict = {"horizon_days": horizon_days, "scores": {}, "skipped": {}}
    if end is None:
        out["skipped"]["all"] = "no timed events from known shoppers"
        return None, out
    goal_items, goal_text = (match_goal(con, run_id, goal) if goal else ([], ""))
    if goal:
        out["goal"] = {"phrase": goal, "matched": goal_text, "items": len(goal_items)}
    churn_days, churn_how = churn_horizon_days(con)
    has_prices = bool(con.execute(
        "SELECT count(*) > 0 FROM events WHERE event_type = 'purchase' AND unit_price > 0"
    ).fetchone()[0])
    plan = [("purchase", horizon_days), ("churn", churn_days)]
    if goal:
        plan.append(("goal", horizon_days))
    if has_prices:
        plan.append(("value", horizon_days))
    else:
        out["skipped"]["value"] = "the data has no prices"
    earliest = min(end - timedelta(days=h) for _, h in plan)
    return {"plan": plan, "end": end, "start": start, "goal_items": goal_items,
            "goal_text": goal_text, "churn_how": churn_how, "earliest": earliest}, out


def start_encoder(con, run_id: int, *, horizon_days: float = 30.0, goal: str | None = None,
                  seed: int = 42, encoder: dict | None = None):
    """Start the predictions' own encoder (``AsOfEncoder.start``: trained on what happened
    before the earliest held-out horizon) so it trains while the rest of the build runs; pass
    the result to ``build_predictions(started=...)``. None where nothing is to be predicted or
    it cannot be trained (``build_predictions`` then says why)."""
    from core.predictions.encoded import AsOfEncoder

    info, _ = _plan(con, run_id, horizon_days, goal)
    if info is None or encoder is None:
        return None
    try:
        return AsOfEncoder(seed=seed, **encoder).start(con, info["earliest"])
    except ValueError:  # e.g. too few shoppers before that date: build_predictions says so
        return None


def build_predictions(con, run_id: int, *, horizon_days: float = 30.0, goal: str | None = None,
                      seed: int = 42, encoder: dict | None = None, started=None,
                      progress: Progress = NULL) -> dict:
    """Backtest and store every score for ``run_id``; return the metrics (skipped scores say why).
    ``started``: the encoder ``start_encoder`` began for this build (else it is trained here)."""
    out, rows = compute_predictions(con, run_id, horizon_days=horizon_days, goal=goal, seed=seed,
                                    encoder=encoder, started=started, progress=progress)
    store_predictions(con, run_id, rows)
    return out


def compute_predictions(con, run_id: int, *, horizon_days: float = 30.0,
                        goal: str | None = None, seed: int = 42, encoder: dict | None = None,
                        started=None, progress: Progress = NULL) -> tuple[dict, tuple]:
    """``build_predictions`` without writing: (the metrics, the rows for ``store_predictions``).
    Writes nothing to ``con`` but the as-of encoder's temporary checkpoint, removed at once."""
    info, out = _plan(con, run_id, horizon_days, goal)
    if info is None:
        return out, ([], [], [])
    plan, end, start, earliest = info["plan"], info["end"], info["start"], info["earliest"]
    goal_items, goal_text, churn_how = info["goal_items"], info["goal_text"], info["churn_how"]
    enc = None
    if encoder is not None and plan:
        # one encoder, trained on what happened before the earliest held-out horizon
        from core.predictions.encoded import AsOfEncoder

        try:
            enc = (started or AsOfEncoder(seed=seed, **encoder)).fit(con, run_id, earliest)
            out["encoder"] = {"trained_before": str(earliest),
                              "seconds": enc.train_metrics_.get("train_seconds"),
                              "trained_in": enc.trained_in_}
        except ValueError as e:          # e.g. too few shoppers before that date
            out["encoder"] = {"skipped": str(e)}
    sample, n_shoppers = _window_shoppers(con, seed)
    if sample is not None:
        out["sampled"] = _sampled_note(len(sample), n_shoppers)
    w = _Windows(con, goal_items, enc, sample)
    scored, backtest, rel_rows = [], [], []
    if enc is not None:
        # The encoder's principal components are fitted on the first window it describes: the
        # shoppers as of the date it was trained before, so they too learn nothing from any
        # score's held-out horizon.
        w.features(earliest)
    with progress.stage("Predictions", total=len(plan)) as bar:
        for i, (name, h) in enumerate(plan):
            w.forget(set().union(*(_score_cuts(g, start, end) for _, g in plan[i:])))
            with threadpool_limits(_tree_threads(n_shoppers)):
                why = _score(w, name, h, start, end, goal_items, goal_text, churn_how, run_id,
                             seed, scored, backtest, rel_rows, out)
            if why:
                out["skipped"][name] = why
            bar.advance()
    w.forget()
    return out, (scored, backtest, rel_rows)


def _tree_threads(n_shoppers: int) -> int | None:
    """Threads for the trees: one on small tables, where thread start-up costs more than it
    saves (2.5x slower on the demo shop with both cores busy), and while a background job
    runs (the trees' threads then wait on each other: explaining 38,000 shoppers of the
    million-shopper shop took 4.0 s on 2 threads against 2.9 s on one, with both cores
    busy); every core for a large shop otherwise."""
    from core.engine.background import busy

    return 1 if n_shoppers < 100_000 or busy() else None


def store_predictions(con, run_id, rows: tuple) -> None:
    """Replace run ``run_id``'s scores, backtests and reliability rows with ``rows``
    (``compute_predictions``'s)."""
    scored, backtest, rel_rows = rows
    for t in ("predictions", "prediction_backtest", "prediction_reliability"):
        con.execute(f"DELETE FROM {t} WHERE run_id = ?", [run_id])
    if scored:
        df = pd.concat(scored, ignore_index=True)  # noqa: F841 (read by DuckDB below)
        con.execute("INSERT INTO predictions SELECT run_id, user_id, score, value, percentile, "
                    "reasons FROM df")
    if backtest:
        con.executemany("INSERT INTO prediction_backtest VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", backtest)
    if rel_rows:
        con.executemany("INSERT INTO prediction_reliability VALUES (?, ?, ?, ?, ?, ?, ?)",
                        rel_rows)
