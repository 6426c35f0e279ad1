"""The profile encoder: learns next-item patterns the text baseline cannot see, is reproducible
with a fixed seed, stores a pickle-free checkpoint, and scores a live history in milliseconds."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from core.embed import embed_items
from core.encoder import (
    DEFAULT_PARAMS,
    EncoderNotFound,
    compute_profiles,
    fuse,
    load_encoder,
    train_encoder,
)
from core.features import compute_features, feature_matrix

N_ITEMS = 24
N_USERS = 48
COLOURS = ["red", "blue", "green", "yellow"]
THINGS = ["mug", "candle", "cushion", "lantern", "tea towel", "vase"]
# small and quick to train; the defaults are tuned for real data
FAST = {"d": 32, "max_epochs": 40, "patience": 5, "batch_size": 32, "lr": 1e-2,
        "max_target_passes": None, "min_improvement": 0.0}


def _item(i: int) -> str:
    return f"I{i:02d}"


def _tiny_shop(store, n_users=N_USERS, steps=20):
    """Shoppers walk the catalogue in a fixed cycle (I00 -> I01 -> ... -> I23 -> I00), viewing
    then buying: the next item follows from the item ids, not from the titles."""
    with store.write() as con:
        for i in range(N_ITEMS):
            con.execute(
                "INSERT INTO items VALUES (?, ?, NULL, ?, NULL, ?, 1)",
                [_item(i), f"{COLOURS[i % 4].title()} {THINGS[i % 6]}",
                 f"Home > {THINGS[i % 6].title()}s", 2.0 + i % 5],
            )
        for u in range(n_users):
            con.execute("INSERT INTO users VALUES (?, '{}', NULL, 1)", [f"u{u:03d}"])
        # event e of user u: item (u + e // 2) mod N, a view then a purchase of it
        con.execute(
            f"""
            INSERT INTO events
            SELECT row_number() OVER (ORDER BY u, e), printf('u%03d', u),
                   printf('I%02d', (u + e // 2) % {N_ITEMS}),
                   CASE WHEN e % 2 = 0 THEN 'view' ELSE 'purchase' END,
                   TIMESTAMP '2024-01-01' + INTERVAL (u) HOUR + INTERVAL (e * 37) MINUTE
                       + INTERVAL ((e // 6) * 3) DAY,
                   1, 2.0, CASE WHEN e % 2 = 1 THEN printf('b%03d_%02d', u, e) END, NULL, 1, NULL
            FROM range({n_users}) r(u), range({steps}) s(e)
            """
        )
    return store


@pytest.fixture(scope="module")
def tiny_trained(tmp_path_factory):
    from core.store import Store

    store = _tiny_shop(Store(tmp_path_factory.mktemp("enc") / "tiny.duckdb"))
    with store.write() as con:
        embed_items(con)
        compute_features(con, 1)
        metrics = train_encoder(con, 1, device="cpu", seed=3, params=FAST)
        prof = compute_profiles(con, 1, device="cpu")
    return store, metrics, prof


def test_encoder_learns_the_sequence_pattern_and_beats_the_text_baseline(tiny_trained):
    store, m, _ = tiny_trained
    assert m["device"] == "cpu"
    assert m["n_users"] == N_USERS and m["n_items"] == N_ITEMS
    assert m["n_interactions"] == N_USERS * 20
    # every user has 20 events: the last 2 (10 %) are held out
    assert m["n_val_targets"] == N_USERS * 2
    assert 1 <= m["best_epoch"] <= m["epochs"] <= FAST["max_epochs"]
    assert m["val_ndcg10"] > 0.8
    assert m["baseline_mean_embedding_ndcg10"] < 0.6
    assert m["val_ndcg10"] > m["baseline_mean_embedding_ndcg10"]
    con = store.read()
    curve = con.execute(
        "SELECT epoch, train_loss, val_ndcg10 FROM training_curve WHERE run_id = 1 ORDER BY epoch"
    ).fetchall()
    assert [r[0] for r in curve] == list(range(1, m["epochs"] + 1))
    assert curve[-1][1] < curve[0][1]
    assert max(r[2] for r in curve) == pytest.approx(m["val_ndcg10"])


def test_checkpoint_is_safetensors_plus_json_and_the_vocabulary_is_stored(tiny_trained):
    from safetensors.torch import load

    store, m, _ = tiny_trained
    con = store.read()
    config, weights = con.execute(
        "SELECT config, weights FROM model_checkpoints WHERE run_id = 1").fetchall()[0]
    config = json.loads(config)
    assert config["params"]["d"] == FAST["d"] and config["n_items"] == N_ITEMS
    assert config["metrics"]["val_ndcg10"] == pytest.approx(m["val_ndcg10"])
    state = load(bytes(weights))  # plain tensors, no pickle
    assert state["item_id.weight"].shape == (N_ITEMS + 1, FAST["d"])
    vocab = con.execute(
        "SELECT item_index, item_id FROM encoder_items WHERE run_id = 1 ORDER BY item_index"
    ).fetchall()
    assert vocab == [(i, _item(i)) for i in range(N_ITEMS)]


def test_profiles_fuse_both_blocks_with_equal_variance(tiny_trained):
    store, _, prof = tiny_trained
    con = store.read()
    users, X, names = feature_matrix(con, 1)
    rows = con.execute("SELECT user_id, vector FROM profiles WHERE run_id = 1 ORDER BY user_id"
                       ).fetchall()
    assert [r[0] for r in rows] == users and len(users) == N_USERS
    P = np.array([r[1] for r in rows], dtype=np.float64)
    d = FAST["d"]
    assert P.shape == (N_USERS, d + len(names)) == (N_USERS, prof["dim"])
    var_seq = P[:, :d].var(axis=0).sum()
    var_feat = P[:, d:].var(axis=0).sum()
    assert var_seq == pytest.approx(0.5, rel=1e-3) and var_feat == pytest.approx(0.5, rel=1e-3)


def test_fuse_weights_blocks_by_share_of_total_variance():
    rng = np.random.default_rng(0)
    S = rng.normal(size=(200, 64)) * 0.01      # small-scale, many dimensions
    X = rng.normal(size=(200, 5)) * 10.0       # large-scale, few dimensions
    for w in (0.5, 0.8, 1.0):
        P, stats = fuse(S, X, w)
        assert P[:, 64:].var(axis=0).sum() == pytest.approx(w, rel=1e-4)
        assert P[:, :64].var(axis=0).sum() == pytest.approx(1 - w, abs=1e-6)


def test_same_seed_gives_identical_profiles(tiny_trained, tmp_path):
    from core.store import Store

    store, m, _ = tiny_trained
    path = tmp_path / "again.duckdb"
    shutil.copyfile(store.path, path)
    again = Store(path)
    with again.write() as con:
        m2 = train_encoder(con, 1, device="cpu", seed=3, params=FAST)
        compute_profiles(con, 1, device="cpu")
    q = "SELECT user_id, vector FROM profiles WHERE run_id = 1 ORDER BY user_id"
    a = store.read().execute(q).fetchall()
    b = again.read().execute(q).fetchall()
    assert a == b
    assert m2["val_ndcg10"] == m["val_ndcg10"] and m2["epochs"] == m["epochs"]


def test_live_scores_follow_the_history(tiny_trained):
    store, _, _ = tiny_trained
    con = store.read()
    enc = load_encoder(con, 1)
    assert enc.item_ids == [_item(i) for i in range(N_ITEMS)]
    t0 = np.datetime64("2024-03-01T10:00")
    hist = [(_item(i), t, t0 + np.timedelta64(10 * k, "m"))
            for k, (i, t) in enumerate([(5, "view"), (5, "purchase"), (6, "view"),
                                        (6, "purchase"), (7, "view"), (7, "purchase")])]
    s = enc.next_item_scores(hist)
    assert s.shape == (N_ITEMS,) and s.dtype == np.float32
    assert enc.item_ids[int(np.argmax(s))] == _item(8)
    # order is taken from the timestamps, not the list order
    np.testing.assert_allclose(enc.next_item_scores(hist[::-1]), s, atol=1e-5)
    # an item the encoder has never seen and that has no cached text is skipped
    np.testing.assert_allclose(enc.next_item_scores([("NOPE", "view", t0)] + hist), s, atol=1e-5)
    assert enc.next_item_scores([]).shape == (N_ITEMS,)
    v = enc.profile_vector(hist)
    assert v.shape == (FAST["d"],) and np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="Unknown event type"):
        enc.next_item_scores([(_item(1), "teleport", t0)])


def test_new_catalogue_item_is_understood_from_its_cached_text(tiny_trained, tmp_path):
    from core.store import Store

    store, _, _ = tiny_trained
    path = tmp_path / "new_item.duckdb"
    shutil.copyfile(store.path, path)
    s2 = Store(path)
    with s2.write() as con:
        con.execute("INSERT INTO items VALUES ('NEW', 'Green glass jug', NULL, 'Kitchen > Jugs', NULL, 3.0, 2)")
        assert embed_items(con)["n_embedded"] == 1
    enc = load_encoder(s2.read(), 1)
    assert "NEW" not in enc.item_ids
    base = enc.next_item_scores([(_item(5), "view", None)])
    with_new = enc.next_item_scores([(_item(5), "view", None), ("NEW", "view", None)])
    assert not np.allclose(base, with_new)


def test_sampled_softmax_also_learns_the_pattern(tiny_trained, tmp_path):
    from core.store import Store

    store, _, _ = tiny_trained
    path = tmp_path / "sampled.duckdb"
    shutil.copyfile(store.path, path)
    with Store(path).write() as con:
        m = train_encoder(con, 1, device="cpu", seed=3, params={**FAST, "negatives": 8})
    assert m["softmax"] == "sampled (8 negatives)"
    # a third of the catalogue as negatives learns more slowly, but learns
    assert m["val_ndcg10"] > 3 * m["baseline_mean_embedding_ndcg10"]


def test_bad_parameters_and_missing_model_are_explained(tiny_trained):
    store, _, _ = tiny_trained
    with store.write() as con:
        with pytest.raises(ValueError, match="Unknown encoder parameter"):
            train_encoder(con, 2, params={"layers": 3})
        with pytest.raises(EncoderNotFound, match="segstudio build"):
            compute_profiles(con, 99)
    assert set(FAST) <= set(DEFAULT_PARAMS)


@pytest.mark.slow
def test_demo_shop_encoder_beats_baseline_and_profiles_keep_shopper_types(demo_store, tmp_path):
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    from core.store import Store

    path = tmp_path / "demo.duckdb"
    shutil.copyfile(demo_store.path, path)
    store = Store(path)
    with store.write() as con:
        embed_items(con)
        compute_features(con, 1)
        m = train_encoder(con, 1, device="cpu", seed=7)
        compute_profiles(con, 1, device="cpu")
    assert m["val_ndcg10"] > m["baseline_mean_embedding_ndcg10"]
    con = store.read()
    rows = con.execute(
        "SELECT p.vector, t.shopper_type FROM profiles p JOIN demo_truth t USING (user_id) "
        "WHERE p.run_id = 1 ORDER BY p.user_id").fetchall()
    P = np.array([r[0] for r in rows])
    truth = [r[1] for r in rows]
    labels = KMeans(n_clusters=len(set(truth)), n_init=10, random_state=0).fit_predict(P)
    assert adjusted_rand_score(truth, labels) >= 0.8
    enc = load_encoder(con, 1)
    hist = [(r[0], r[1], r[2]) for r in con.execute(
        "SELECT item_id, event_type, ts FROM events WHERE user_id = (SELECT min(user_id) FROM "
        "events) ORDER BY ts").fetchall()]
    scores = enc.next_item_scores(hist)
    assert scores.shape == (len(enc.item_ids),) and np.isfinite(scores).all()


def test_validation_is_the_basket_before_the_last_and_the_checkpoint_says_so(tmp_path):
    """With the build's split, the encoder trains on neither held-out basket, stops early on
    the basket before the last, and records a fingerprint of both for the evaluation."""
    from core.encoder.data import holdout_fingerprint
    from core.features.holdout import cutoffs, last_basket_split
    from core.store import Store

    store = _tiny_shop(Store(tmp_path / "t.duckdb"))
    with store.write() as con:
        embed_items(con)
        split = last_basket_split(con)
        test, val = cutoffs(split), cutoffs(split, "val_cut")
        # every purchase is its own basket: the last is event 20, the one before event 18
        assert set(test.values()) == {19} and set(val.values()) == {17}
        m = train_encoder(con, 1, device="cpu", seed=3, params={**FAST, "max_epochs": 2},
                          cutoffs=test, val_cutoffs=val)
        cfg = json.loads(con.execute("SELECT config FROM model_checkpoints").fetchall()[0][0])
    assert m["n_held_out_interactions"] == N_USERS          # the last basket, one event each
    assert m["n_val_targets"] == 2 * N_USERS                # its purchase and the view before
    assert cfg["holdout"]["test"] == holdout_fingerprint(test)
    assert cfg["holdout"]["validation"] == holdout_fingerprint(val)
    assert holdout_fingerprint({**test, "u000": 18}) != cfg["holdout"]["test"]


def test_training_work_stays_within_the_budget_on_a_large_shop(tmp_path):
    """At any shop size one training run costs at most the compute budget: when one epoch over
    every shopper would exceed ``max_target_passes`` training targets, a seeded sample of
    shoppers fills it, and at most ``max_val_users`` shoppers are validated on. The sample is
    said in the metrics. (48 shoppers x 17 training targets here; a budget of 100 keeps 6.)"""
    from core.store import Store

    store = _tiny_shop(Store(tmp_path / "budget.duckdb"))
    params = {**FAST, "max_epochs": 1, "max_target_passes": 100, "max_val_users": 10}
    with store.write() as con:
        embed_items(con)
        m = train_encoder(con, 1, device="cpu", seed=3, params=params)
        full = train_encoder(con, 2, device="cpu", seed=3, params={**FAST, "max_epochs": 1})
    assert m["train_sample"]["shoppers"] == 6 and m["train_sample"]["of"] == 48
    assert m["n_train_targets"] == 102            # 6 shoppers x 17 targets: the budget, filled
    assert m["validation_sample"] == {"shoppers": 10, "of": 48,
                                      "why": "validation on at most 10 shoppers"}
    assert m["n_val_targets"] == 20               # 10 shoppers x their last 2 interactions
    assert "train_sample" not in full and "validation_sample" not in full
    assert full["n_train_targets"] == 48 * 17 and full["n_val_targets"] == 48 * 2
    # a large catalogue: every validation target is ranked among all items, so the validation
    # is bounded in targets x items too (here 7 shoppers x 3 targets each x the catalogue)
    with store.write() as con:
        n_items = con.execute("SELECT count(*) FROM items").fetchone()[0]
        big = train_encoder(con, 3, device="cpu", seed=3, params={
            **FAST, "max_epochs": 1, "max_val_scores": 7 * 3 * n_items + n_items,
            "min_val_users": 1})
        floor = train_encoder(con, 4, device="cpu", seed=3, params={
            **FAST, "max_epochs": 1, "max_val_scores": 1, "min_val_users": 9})
    assert big["validation_sample"]["shoppers"] == 7 and big["n_val_targets"] == 14
    assert f"ranked among all {n_items:,} items" in big["validation_sample"]["why"]
    assert floor["validation_sample"]["shoppers"] == 9


def test_last_position_only_equals_the_last_row_of_the_full_pass():
    """Placing a very large shop's shoppers reads only the last position: the shortcut (the
    last block computes that position alone) gives the full pass's last row, padding included."""
    import torch

    from core.encoder.model import SeqEncoder

    torch.manual_seed(0)
    m = SeqEncoder(40, 8, d=16, n_layers=2, n_heads=2, max_len=12).eval()
    items = torch.randint(1, 41, (5, 12))
    types = torch.randint(1, 4, (5, 12))
    types[:2, :7] = 0                      # two left-padded shoppers
    items[types == 0] = 0
    gaps = torch.randint(1, 4, (5, 12))
    with torch.inference_mode():
        full = m(items, types, gaps)
        last = m(items, types, gaps, last=True)
    assert last.shape == (5, 1, 16)
    torch.testing.assert_close(last[:, 0], full[:, -1], rtol=1e-5, atol=1e-6)


def test_a_live_history_is_read_as_in_training_and_in_the_stored_profiles(tiny_trained):
    """Training and the stored profiles see a shopper's last ``max_len`` interactions
    left-padded, so the latest one is always at the last position. A live history (the
    recommendation previews, the offline evaluation) is read the same way: a stored shopper's
    live profile is their stored sequence vector, and scoring many histories at once gives each
    one's own scores."""
    from core.encoder.data import load_sequences, take_users
    from core.encoder.runtime import _pooled

    store, _, _ = tiny_trained
    con = store.read()
    enc = load_encoder(con, 1)
    seq = load_sequences(con, enc.item_ids)
    users = ["u000", "u007", "u031"]
    hists = [con.execute("SELECT item_id, event_type, ts FROM events WHERE user_id = ? "
                         "ORDER BY ts", [u]).fetchall() for u in users]
    assert all(len(h) == 20 < enc.model.max_len for h in hists)   # shorter than a window
    stored = _pooled(enc.model, take_users(seq, [seq.user_ids.index(u) for u in users]),
                     enc.params["pooling"], "cpu")
    live = np.stack([enc.profile_vector(h) for h in hists])
    np.testing.assert_allclose(live, stored, atol=1e-5)
    many = enc.next_item_scores_many(hists + [[]] + hists[:1])
    one = np.stack([enc.next_item_scores(h) for h in hists + [[]] + hists[:1]])
    assert many.shape == (5, N_ITEMS) and many.dtype == np.float32
    np.testing.assert_allclose(many, one, atol=1e-5)


def test_the_fused_softmax_head_gives_cross_entropys_loss_and_gradients():
    """Training's full-softmax loss (one buffer for logits, softmax and gradient) equals
    ``F.cross_entropy`` of ``h @ E.T + bias``: the mean over targets, and the DDP form (this
    rank's sum times world over the step's targets)."""
    import torch
    from torch.nn import functional as F

    from core.encoder.loop import softmax_xent

    g = torch.Generator().manual_seed(0)
    h0, E0, b0 = (torch.randn(*s, generator=g) for s in ((37, 16), (250, 16), (250,)))
    t = torch.randint(0, 250, (37,), generator=g)
    for scale, reduction, factor in ((1 / 37, "mean", 1.0), (2 / 70, "sum", 2 / 70)):
        got, ref = [], []
        for fn, out in ((lambda h, E, b: softmax_xent(h, E, b, t, scale), got),
                        (lambda h, E, b: F.cross_entropy(h @ E.T + b, t,
                                                         reduction=reduction) * factor, ref)):
            h, E, b = (x.clone().requires_grad_() for x in (h0, E0, b0))
            loss = fn(h, E, b)
            loss.backward()
            out += [loss.detach(), h.grad, E.grad, b.grad]
        for a, r in zip(got, ref):
            torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-6)


def test_the_bf16_head_gives_the_float32_loss_and_gradients_to_bfloat16_precision(monkeypatch):
    """On a CPU with native bfloat16 and a catalogue of ``HEAD_BF16_FROM`` items or more, the
    head's three products run in bfloat16 with rows rounded up: the loss and every gradient are
    float32's to bfloat16's precision, with the same shapes; smaller catalogues, other CPUs and
    GPUs (which autocast) keep float32."""
    import torch

    from core.encoder import loop

    g = torch.Generator().manual_seed(1)
    h0, E0, b0 = (torch.randn(*s, generator=g) * 0.3 for s in ((300, 16), (2100, 16), (2100,)))
    t = torch.randint(0, 2100, (300,), generator=g)
    out = {}
    for bf16 in (False, True):
        h, E, b = (x.clone().requires_grad_() for x in (h0, E0, b0))
        loss = loop.softmax_xent(h, E, b, t, 1 / 300, bf16=bf16)
        loss.backward()
        out[bf16] = [loss.detach(), h.grad, E.grad, b.grad]
    for a, r in zip(out[True], out[False]):
        assert a.shape == r.shape and a.dtype == r.dtype == torch.float32
        assert float((a - r).norm() / r.norm()) < 0.01
    monkeypatch.setattr("core.config.cpu_has_bf16", lambda: True)
    assert loop.bf16_head("cpu", loop.HEAD_BF16_FROM)
    assert not loop.bf16_head("cpu", loop.HEAD_BF16_FROM - 1)
    assert not loop.bf16_head("cuda", 50_000)
    monkeypatch.setattr("core.config.cpu_has_bf16", lambda: False)
    assert not loop.bf16_head("cpu", 50_000)


def test_the_bf16_head_in_blocks_of_rows_gives_the_unblocked_gradients(monkeypatch):
    """The bfloat16 head works through its rows ``HEAD_BF16_BLOCK`` at a time (the block's
    logits and softmax stay in the cache): the hidden states' and items' gradients are bit for
    bit those of one block over every row, the loss and the bias gradient (summed block by
    block) agree to float32 rounding, and a loss scaled after the head scales every gradient."""
    import torch

    from core.encoder import loop

    g = torch.Generator().manual_seed(2)
    h0, E0, b0 = (torch.randn(*s, generator=g) * 0.3 for s in ((300, 16), (2100, 16), (2100,)))
    t = torch.randint(0, 2100, (300,), generator=g)

    def run(block, times=1.0):
        monkeypatch.setattr(loop, "HEAD_BF16_BLOCK", block)
        h, E, b = (x.clone().requires_grad_() for x in (h0, E0, b0))
        loss = loop.softmax_xent(h, E, b, t, 1 / 300, bf16=True)
        (loss * times).backward()
        return [loss.detach(), h.grad, E.grad, b.grad]

    one = run(10 ** 6)                 # one block: the whole (rows rounded up to 256) at once
    blocked = run(128)                 # 300 targets: blocks of 128, 128 and 44
    assert torch.equal(blocked[1], one[1]) and torch.equal(blocked[2], one[2])
    torch.testing.assert_close(blocked[0], one[0], rtol=1e-6, atol=0)
    torch.testing.assert_close(blocked[3], one[3], rtol=1e-5, atol=1e-8)
    tripled = run(128, times=3.0)
    for a, r in zip(tripled[1:], blocked[1:]):
        torch.testing.assert_close(a, 3 * r, rtol=1e-6, atol=1e-9)
    # the loss itself: the cross-entropy of the bfloat16 logits, to float32 rounding
    logits = torch.addmm(b0.bfloat16(), h0.bfloat16(), E0.bfloat16().T).float()
    ref = torch.nn.functional.cross_entropy(logits, t, reduction="sum") / 300
    torch.testing.assert_close(blocked[0], ref, rtol=1e-5, atol=0)


@pytest.mark.parametrize("score_rows", [256, 3])
def test_validation_on_packed_rows_ranks_every_target_as_in_its_own_row(score_rows, monkeypatch):
    """The per-epoch validation packs windows as training does, and scores a batch's targets
    ``EVAL_SCORE_ROWS`` at a time: every target's rank, so NDCG@10 and recall@10, are those of
    each window scored in its own left-padded row."""
    import torch

    from core.encoder import loop
    from core.encoder.loop import _evaluate

    monkeypatch.setattr(loop, "EVAL_SCORE_ROWS", score_rows)
    from core.encoder.model import SeqEncoder
    from core.encoder.train import ndcg_recall_at_10

    rng = np.random.default_rng(4)
    L, n_items, n = 12, 40, 23
    k = rng.integers(1, L + 1, n)
    items, types, gaps = (np.zeros((n, L), np.int64) for _ in range(3))
    targets = np.full((n, L), -100, np.int64)
    for w in range(n):
        items[w, L - k[w]:] = rng.integers(1, n_items + 1, k[w])
        types[w, L - k[w]:] = rng.integers(1, 4, k[w])
        gaps[w, L - k[w]:] = rng.integers(1, 9, k[w])
        targets[w, L - rng.integers(1, k[w] + 1):] = rng.integers(0, n_items)
    torch.manual_seed(0)
    m = SeqEncoder(n_items, 8, d=16, n_layers=2, n_heads=2, max_len=L)
    with torch.no_grad():
        m.item_text.normal_()
        m.item_bias.normal_()
    val = (np.arange(n), items, types, gaps, targets)
    got = _evaluate(m, val, "cpu", batch=7)       # several batches, each packed
    with torch.inference_mode():
        E = m.item_matrix()
        h = m(*(torch.as_tensor(a) for a in (items, types, gaps)), E)
        tg = torch.as_tensor(targets)
        sc = m.scores(h[tg >= 0], E)
        ranks = (sc >= sc.gather(1, tg[tg >= 0][:, None])).sum(1) - 1
    assert int((tg >= 0).sum()) > n
    assert got == pytest.approx(ndcg_recall_at_10(ranks.numpy()), abs=1e-9)


def test_packed_rows_give_every_window_the_outputs_and_targets_of_its_own_row():
    """Training packs a batch's short windows into shared rows (fewer rows to compute): each
    window's interactions keep their position embeddings and attend only within the window, so
    every interaction's hidden state and target are those of the window in its own
    left-padded row, in both attention paths (inference's and training's written-out one)."""
    import torch

    from core.encoder.loop import pack
    from core.encoder.model import SeqEncoder

    rng = np.random.default_rng(0)
    L, n_items, n = 12, 30, 9
    k = np.array([12, 12, 1, 3, 5, 7, 2, 11, 4])           # lengths: fulls and short ones
    X = [np.zeros((n, L), np.int64) for _ in range(3)] + [np.full((n, L), -100, np.int64)]
    for w in range(n):
        X[0][w, L - k[w]:] = rng.integers(1, n_items + 1, k[w])
        X[1][w, L - k[w]:] = rng.integers(1, 4, k[w])
        X[2][w, L - k[w]:] = rng.integers(1, 9, k[w])
        X[3][w, L - k[w]:] = rng.integers(0, n_items, k[w])
    X = [torch.as_tensor(a) for a in X]
    idx = torch.as_tensor(rng.permutation(n))
    (items, types, gaps, tg), (pos, wid) = pack(X, idx, k, L, "cpu")
    assert items.shape == (5, L)                            # 9 windows, 57 interactions
    assert int((types > 0).sum()) == int(k.sum()) == int((tg >= 0).sum())
    torch.manual_seed(0)
    m = SeqEncoder(n_items, 8, d=16, n_layers=2, n_heads=2, max_len=L).eval()
    with torch.inference_mode():
        m.item_text.normal_()
        full = m(*(x[idx] for x in X[:3]))
        packed = m(items, types, gaps, packed=(pos, wid))
        m.train()
        for mod in m.modules():       # the training path, dropout off
            if hasattr(mod, "p"):
                mod.p = 0.0
        trained_path = m(items, types, gaps, packed=(pos, wid))
    own = X[3][idx] >= 0
    r, c = torch.nonzero(tg >= 0, as_tuple=True)
    w, col = wid[r, c] - 1, pos[r, c]                        # each interaction's own row, column
    assert bool(own[w, col].all()) and torch.equal(tg[r, c], X[3][idx][w, col])
    torch.testing.assert_close(packed[r, c], full[w, col], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(trained_path[r, c], full[w, col], rtol=1e-5, atol=1e-6)


def test_the_cpu_dropout_keeps_a_share_of_one_minus_p_scaled_up():
    import torch

    from core.encoder.model import dropout

    torch.manual_seed(0)
    x = torch.ones(200_000)
    y = dropout(x, 0.2, True)
    kept = y > 0
    assert abs(float(kept.float().mean()) - 0.8) < 0.005
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1.25))
    assert dropout(x, 0.2, False) is x


def test_the_mean_of_text_baseline_ranks_each_target_by_the_sum_of_what_came_before():
    """The baseline the encoder is compared with: each validation target ranked by the cosine of
    its item's text vector with the sum of the shopper's earlier items' vectors (their whole
    history before it, the earlier validation targets included), NDCG@10 and recall@10 over
    every target, computed here target by target."""
    from core.encoder.data import Sequences
    from core.encoder.train import baseline_mean_text, ndcg_recall_at_10

    rng = np.random.default_rng(8)
    n_items, lens = 60, np.array([5, 1, 9, 4, 0, 12, 3])
    n_val = np.array([2, 0, 3, 1, 0, 3, 2])
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    items = rng.integers(0, n_items, int(lens.sum()))
    seq = Sequences([f"u{i}" for i in range(len(lens))], starts, starts + lens, items,
                    np.ones(len(items), np.int64), np.zeros(len(items), np.int64))
    T = rng.normal(size=(n_items, 6)).astype(np.float32)
    ranks = []
    for u in range(len(lens)):
        for r in range(starts[u] + lens[u] - n_val[u], starts[u] + lens[u]):
            prof = T[items[starts[u]:r]].sum(axis=0, dtype=np.float64).astype(np.float32)
            prof /= np.linalg.norm(prof) or 1.0
            sc = T @ prof
            ranks.append(int((sc >= sc[items[r]]).sum()) - 1)
    got = baseline_mean_text(seq, n_val, T)
    assert got[2] == int(n_val.sum()) == len(ranks) == 11
    assert got[:2] == pytest.approx(ndcg_recall_at_10(np.array(ranks)), abs=1e-12)
    assert 0 < got[0] < 1
