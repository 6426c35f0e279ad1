"""Segments end to end: DBSCAN's helpers on planted blobs, and the built demo shop, whose planted
shopper types the taste lens must recover and name as a marketer would."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from core.segments import PALETTE, UNASSIGNED_COLOR, knee, segment_color
from core.segments.cluster import dbscan_fit


def test_knee_of_a_k_distance_curve():
    flat_then_steep = np.concatenate([np.linspace(0, 1, 90), np.linspace(5, 50, 10)])
    assert knee(flat_then_steep) == 1.0
    # one extreme outlier does not move the knee
    assert knee(np.append(flat_then_steep, 1e6)) == 1.0
    assert knee([2.0, 2.0, 2.0]) == 2.0


def test_dbscan_finds_blobs_and_leaves_outliers_unassigned():
    X, y = make_blobs(n_samples=300, centers=[[0, 0], [6, 0], [0, 6]], cluster_std=0.5,
                      random_state=2)
    outliers = np.array([[20, 20], [-15, 12], [14, -14], [-12, -12], [25, -3],
                         [-20, 3], [3, 22], [10, 25], [-25, -20], [18, 8]], dtype=float)
    labels, m = dbscan_fit(np.vstack([X, outliers]), seed=3)
    assert (labels[300:] == -1).all()
    kept = labels[:300] >= 0
    assert kept.mean() > 0.95
    assert adjusted_rand_score(y[kept], labels[:300][kept]) == 1.0
    assert m["eps_chosen_by"] == "k-distance knee" and 0 < m["eps"] < 6
    assert m["min_samples"] == 4 and m["space"] == "profile"
    assert 0.9 <= m["stability_ari"] <= 1.0 and len(m["k_distance"]) == 100


def test_dbscan_on_wide_spaces_uses_pca_and_fits_on_a_sample():
    X, y = make_blobs(n_samples=600, centers=3, n_features=48, cluster_std=1.0, random_state=4)
    labels, m = dbscan_fit(X, fit_size=300, seed=1)
    assert m["space"].startswith("pca-16") and m["fit_size"] == 300
    kept = labels >= 0
    assert kept.mean() > 0.9 and len(set(labels[kept])) == 3
    assert adjusted_rand_score(y[kept], labels[kept]) == 1.0


def test_palette_colours_are_fixed_by_segment_id():
    assert [segment_color(i) for i in range(4)] == PALETTE[:4]
    assert segment_color(-1) == UNASSIGNED_COLOR and len(set(PALETTE)) == len(PALETTE)


# ----------------------------------------------------------------------------- the demo shop
# planted shopper type -> what its segment should be called
_PLANTED_NAMES = {
    "bargain_hunter": "Bargain hunters",
    "loyal_high_spender": "Loyal high spenders",
    "holiday_gift_buyer": "Holiday gift buyers",
    "category_specialist": "Kitchen specialists",
    "night_owl_browser": "Night owl",
    "one_off_visitor": "One-off shoppers",
}


@pytest.mark.slow  # uses the built demo shop (trains the encoder)
def test_taste_lens_recovers_the_demo_shops_planted_shopper_types(built_demo_store):
    from core.store import latest_run

    con = built_demo_store.read()
    try:
        run = latest_run(con)
        run_id = run["run_id"]
        rows = con.execute(
            "SELECT t.shopper_type, s.segment_id, i.name FROM segments s "
            "JOIN demo_truth t USING (user_id) "
            "JOIN segment_info i ON i.run_id = s.run_id AND i.segment_id = s.segment_id "
            "WHERE s.run_id = ? ORDER BY s.user_id", [run_id]).fetchall()
        names = [r[0] for r in con.execute(
            "SELECT name FROM segment_info WHERE run_id = ?", [run_id]).fetchall()]
        stages = con.execute("SELECT count(DISTINCT segment_id), count(*) FROM lifecycle_segments "
                             "WHERE run_id = ?", [run_id]).fetchone()
    finally:
        con.close()
    assert len(rows) == 600
    truth, labels = [r[0] for r in rows], [r[1] for r in rows]
    ari = adjusted_rand_score(truth, labels)
    assert ari >= 0.9, f"ARI {ari:.3f} between the taste segments and the planted shopper types"
    seg = run["metrics"]["segments"]
    assert seg["method"] == "kmeans" and seg["k"] == 6
    k_min, k_max = run["params"]["k_range"]
    scanned = sorted({(r["candidate"], r["k"]) for r in seg["k_scan"]})
    assert scanned == [(c, k) for c in ("taste", "taste_habits") for k in range(k_min, k_max + 1)]
    assert sum(r["chosen"] for r in seg["k_scan"]) == 1
    assert 0.8 <= seg["stability_seed"] <= 1 and 0.7 <= seg["stability_bootstrap"] <= 1
    v = seg["validity"]
    assert v["segments"]["shoppers"] == v["popularity"]["shoppers"] > 0
    assert v["segments"]["ndcg10"] > v["popularity"]["ndcg10"]
    sizes = [seg["sizes"][str(s)] for s in range(seg["k"])]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == 600
    assert len(set(names)) == len(names) and all(n.strip() for n in names)
    assert all(len(n.split()) <= 5 for n in names)  # four words (+ a disambiguating qualifier)
    # each planted type's main segment carries the marketer's name for that type
    for shopper_type, expected in _PLANTED_NAMES.items():
        main = Counter(n for t, _, n in rows if t == shopper_type).most_common(1)[0][0]
        assert expected.lower() in main.lower(), (shopper_type, main)
    assert stages[1] == 600 and stages[0] >= 5  # everyone has a lifecycle stage too


def test_a_very_large_shop_is_segmented_on_a_sample_and_everyone_is_placed(built_demo_store,
                                                                          tmp_path, monkeypatch):
    """Above ``MAX_FIT_SHOPPERS`` (lowered here to 300 of the demo's 600) the segments are chosen
    on a seeded sample and every shopper is then placed chunk by chunk (chunks of 250 here):
    every shopper gets exactly one segment and one taste vector, segment 0 is the largest, the
    run says what was sampled, and the planted shopper types are still recovered for everyone."""
    import shutil

    from core.segments import scale
    from core.segments.build_taste import segment_taste
    from core.store import Store, latest_run

    path = tmp_path / "big.duckdb"
    shutil.copyfile(built_demo_store.path, path)
    store = Store(path)
    monkeypatch.setattr(scale, "MAX_FIT_SHOPPERS", 300)
    monkeypatch.setattr(scale, "CHUNK", 250)
    with store.write() as con:
        run_id = latest_run(con)["run_id"]
        out = segment_taste(con, run_id, k=6, seed=7)
        rows = con.execute(
            "SELECT t.shopper_type, s.segment_id FROM segments s JOIN demo_truth t "
            "USING (user_id) WHERE s.run_id = ? ORDER BY s.user_id", [run_id]).fetchall()
        n_vec, n_users = con.execute(
            "SELECT count(*), count(DISTINCT user_id) FROM taste_vectors WHERE run_id = ?",
            [run_id]).fetchone()
    assert out["sample"]["shoppers"] == 300 and out["sample"]["of"] == 600
    assert "random sample of 300 of the 600 shoppers" in out["sample"]["why"]
    assert len(rows) == 600 and n_vec == n_users == 600
    sizes = [out["sizes"][s] for s in range(out["k"])]
    assert out["k"] == 6 and sum(sizes) == 600 and sizes == sorted(sizes, reverse=True)
    ari = adjusted_rand_score([r[0] for r in rows], [r[1] for r in rows])
    assert ari >= 0.85, f"ARI {ari:.3f} against the planted types, segments chosen on a sample"


def test_taste_checks_run_later_give_the_same_figures(built_demo_store, tmp_path):
    """On a small shop the build runs the taste segments' final checks (bootstrap stability, the
    held-out test against the references) after the rules, while the workers make the map and
    the evaluation: the same segments and the same figures as checking them in the stage."""
    import shutil

    from core.segments.build_taste import segment_taste
    from core.store import Store, latest_run

    path = tmp_path / "copy.duckdb"
    shutil.copyfile(built_demo_store.path, path)

    def same(d):
        return {key: v for key, v in d.items() if not key.endswith("seconds")}

    with Store(path).write() as con:
        run_id = latest_run(con)["run_id"]
        now = segment_taste(con, run_id, k=6, seed=7)
        seg_now = con.execute("SELECT user_id, segment_id FROM segments WHERE run_id = ? "
                              "ORDER BY user_id", [run_id]).fetchall()
        pending: list = []
        later = segment_taste(con, run_id, k=6, seed=7, deferred=pending)
        assert len(pending) == 1 and "validity" not in later and "stability_ari" not in later
        seg_later = con.execute("SELECT user_id, segment_id FROM segments WHERE run_id = ? "
                                "ORDER BY user_id", [run_id]).fetchall()
        later.update(pending[0]())
    assert seg_later == seg_now and len(seg_now) == 600
    assert same(later) == same(now)
    assert now["validity"]["segments"]["shoppers"] > 0 and 0 < now["stability_ari"] <= 1


def _tiny_encoder_and_histories(torch_seed: int, n_items: int, lens, rng_seed: int):
    """A small untrained encoder (max_len 12, random item biases) and shoppers u0, u1, ... with
    histories of ``lens`` random interactions."""
    import torch

    from core.encoder.data import Sequences
    from core.encoder.model import SeqEncoder

    torch.manual_seed(torch_seed)
    model = SeqEncoder(n_items, 8, d=16, n_layers=1, n_heads=2, max_len=12).eval()
    with torch.no_grad():
        model.item_bias.normal_()
    rng = np.random.default_rng(rng_seed)
    lens = np.asarray(lens)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    n = int(lens.sum())
    seq = Sequences([f"u{i}" for i in range(len(lens))], starts, starts + lens,
                    rng.integers(0, n_items, n), rng.integers(1, 4, n), rng.integers(0, 5, n))
    return model, seq


def _top_renormalised(p, k: int) -> np.ndarray:
    """The ``k`` largest of the probabilities ``p``, renormalised, the rest 0 (a dense row)."""
    import torch

    v, j = torch.topk(p, k)
    want = np.zeros(len(p))
    want[j.numpy()] = (v / v.sum()).numpy()
    return want


def test_one_position_expectation_is_the_catalogue_softmax_top_items():
    """At scale the expected items come from a shopper's last position only; taken from the
    logits' top items, they are exactly the full-catalogue softmax's top items renormalised
    (what the several-position path computes), and shoppers with nothing kept get no row."""
    import torch

    from core.encoder.data import last_window
    from core.segments.taste import _expected

    model, seq = _tiny_encoder_and_histories(3, 300, [5, 30, 1, 0, 17], 0)
    P = _expected(model, seq, seq.ends, top_n=20, device="cpu", positions=20, stride=20)
    assert P.shape == (5, 300) and P[3].nnz == 0
    with torch.inference_mode():
        E = model.item_matrix()
        for u in (0, 1, 2, 4):
            items, types, gaps = (torch.as_tensor(a)[None] for a in
                                  last_window(seq, seq.starts[u], seq.ends[u], 12))
            p = torch.softmax(model.scores(model(items, types, gaps, E)[0, -1], E), -1)
            assert P[u].nnz == 20
            np.testing.assert_allclose(P[u].toarray().ravel(), _top_renormalised(p, 20),
                                       atol=1e-6)


def test_several_position_expectation_averages_the_softmax_over_interactions_only():
    """A shopper's expected items are the mean of the catalogue softmax over the scored
    positions of their window that hold an interaction (a short history's window starts with
    padding, which is left out), top items kept and renormalised."""
    import torch

    from core.encoder.data import last_window
    from core.segments.taste import _expected

    lens = [3, 30, 1, 0, 9, 12]
    model, seq = _tiny_encoder_and_histories(5, 200, lens, 1)
    P = _expected(model, seq, seq.ends, top_n=15, device="cpu", positions=8, stride=2)
    assert P.shape == (6, 200) and P[3].nnz == 0
    with torch.inference_mode():
        E = model.item_matrix()
        for u in (0, 1, 2, 4, 5):
            items, types, gaps = (torch.as_tensor(a)[None] for a in
                                  last_window(seq, seq.starts[u], seq.ends[u], 12))
            cols = [c for c in range(12 - 8 + 1, 12, 2) if types[0, c] > 0]   # 5, 7, 9, 11
            assert len(cols) == min(4, (min(lens[u], 8) + 1) // 2)
            h = model(items, types, gaps, E)[0, cols]
            p = torch.softmax(model.scores(h, E), -1).mean(0)
            np.testing.assert_allclose(P[u].toarray().ravel(), _top_renormalised(p, 15),
                                       atol=1e-6)


def test_the_expectation_is_the_same_in_any_chunks_of_shoppers(monkeypatch):
    """The shoppers are scored in chunks small enough for the processor's cache
    (``EXPECTED_CHUNK_SCORES``): one shopper a chunk, three, or all at once give the same
    values."""
    from core.segments import taste

    model, seq = _tiny_encoder_and_histories(5, 200, [3, 30, 1, 0, 9, 12, 7], 2)
    got = []
    for limit in (4 * 200, 3 * 4 * 200, 10 ** 9):      # 4 positions x 200 items a shopper
        monkeypatch.setattr(taste, "EXPECTED_CHUNK_SCORES", limit)
        got.append(taste._expected(model, seq, seq.ends, top_n=15, device="cpu", positions=8,
                                   stride=2))
    for P in got[1:]:
        assert (P != got[0]).nnz == 0 and P.nnz == got[0].nnz > 0


def test_lifecycle_check_of_a_very_large_shop_runs_on_a_sample(built_demo_store, monkeypatch):
    """Above ``MAX_CHECK_SHOPPERS`` (lowered to 300 of the demo's 600) the lifecycle's held-out
    check runs on a seeded sample: its figures count only sampled shoppers, the run says so, and
    the same seed gives the same figures."""
    from core.features.holdout import last_basket_split
    from core.segments import lifecycle
    from core.store import Store

    with Store(built_demo_store.path).read() as con:
        split = last_basket_split(con)
        full = lifecycle.lifecycle_quality(con, split, seed=5)
        monkeypatch.setattr(lifecycle, "MAX_CHECK_SHOPPERS", 300)
        a = lifecycle.lifecycle_quality(con, split, seed=5)
        b = lifecycle.lifecycle_quality(con, split, seed=5)
    assert "sample" not in full and a["sample"]["shoppers"] == 300 and a["sample"]["of"] == 600
    assert "random sample of 300 of the 600 shoppers" in a["sample"]["why"]
    n_full = full["validity"]["segments"]["shoppers"]
    n_a = a["validity"]["segments"]["shoppers"]
    assert 0.35 * n_full < n_a < 0.65 * n_full   # only the sampled shoppers are scored
    assert a["validity"]["segments"] == b["validity"]["segments"]
