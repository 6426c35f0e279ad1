"""`segstudio build` as a whole: one complete run with every stage's output, or nothing."""

from __future__ import annotations

import json
import shutil

import pytest

from core.cli import main
from core.pipeline import BuildError, BuildParams, build
from core.store import Store, latest_run, list_runs

# the map is laid out in a background worker (on a small shop from after the quality checks,
# else from after "describe") and collected last; the lenses' quality checks run after the rules
# while the workers make the evaluation; on a small shop the predictions' worker is collected
# after the checks (a large shop makes them here after "describe")
STAGES = ["embed", "themes", "features", "encoder", "profiles", "lifecycle", "segments", "describe",
          "rules", "checks", "predictions", "evaluate", "map"]


def _one(con, sql, *args):
    return con.execute(sql, list(args)).fetchone()[0]


def test_build_writes_every_stage_for_every_shopper(built_demo_store):
    con = built_demo_store.read()
    try:
        run = latest_run(con)
        rid = run["run_id"]
        assert run["status"] == "complete"
        assert list(run["metrics"]["stage_seconds"]) == STAGES
        assert run["metrics"]["skipped"] == {}
        n_users = _one(con, "SELECT count(*) FROM users")
        assert n_users == 600
        # every shopper has features, a profile, a segment and a map position in this run
        for table in ("user_features", "profiles", "segments", "lifecycle_segments",
                      "taste_vectors", "user_map"):
            assert _one(con, f"SELECT count(DISTINCT user_id) FROM {table} WHERE run_id = ?", rid) == n_users, table
        k = run["metrics"]["k"]
        assert _one(con, "SELECT count(*) FROM segment_info WHERE run_id = ?", rid) == k
        assert _one(con, "SELECT count(DISTINCT name) FROM segment_info WHERE run_id = ?", rid) == k
        assert _one(con, "SELECT sum(size) FROM segment_info WHERE run_id = ?", rid) == n_users
        assert _one(con, "SELECT sum(size) FROM lifecycle_info WHERE run_id = ?", rid) == n_users
        assert _one(con, "SELECT count(*) FROM theme_info WHERE run_id = ?", rid) >= 4
        held = run["metrics"]["held_out"]
        assert held["shoppers"] == run["metrics"]["encoder"]["n_users_with_held_out_basket"] > 0
        assert _one(con, "SELECT count(*) FROM rules WHERE run_id = ? AND segment_id IS NULL", rid) > 0
        assert _one(con, "SELECT count(*) FROM evaluations WHERE run_id = ?", rid) >= 5
        assert _one(con, "SELECT count(*) FROM training_curve WHERE run_id = ?", rid) >= 1
        assert _one(con, "SELECT count(*) FROM model_checkpoints WHERE run_id = ?", rid) >= 1
        assert 0.0 < run["metrics"]["silhouette"] <= 1.0
        assert run["params"]["seed"] == 7
    finally:
        con.close()


def test_a_large_shop_keeps_its_stages_in_order_with_the_same_figures(built_demo_store,
                                                                      tmp_path, monkeypatch):
    """Above 100,000 shoppers (the thresholds lowered here to the demo's 600) the predictions
    are made in the build process after the descriptions and the quality checks run in their
    stages, where the million-shopper build's memory was measured: the same segments, checks
    and scores as the small-shop order of the first build."""
    import core.pipeline as pipeline
    import core.predictions.background as pbg

    path = tmp_path / "large.duckdb"
    shutil.copyfile(built_demo_store.path, path)
    store = Store(path)
    monkeypatch.setattr(pipeline, "CHECKS_LATER_BELOW", 600)
    monkeypatch.setattr(pbg, "BACKGROUND_MAX_SHOPPERS", 599)
    m = build(store, BuildParams(seed=7, evaluate=False))
    with store.read() as con:
        first = list_runs(con, "build")[-1]       # the fixture's build
        m0 = con.execute("SELECT metrics FROM runs WHERE run_id = ?", [first["run_id"]]
                         ).fetchone()[0]
        scores = [con.execute("SELECT score, user_id, value FROM predictions WHERE run_id = ? "
                              "ORDER BY score, user_id", [r]).fetchall()
                  for r in (first["run_id"], m["run_id"])]
    m0, m = json.loads(m0), json.loads(json.dumps(m))     # as stored
    assert list(m["stage_seconds"]) == ["embed", "themes", "features", "encoder", "profiles",
                                        "lifecycle", "segments", "describe", "predictions",
                                        "rules", "map"]
    assert m["predictions"]["made_in"] == "build process"
    for key in ("stability_seed", "stability_bootstrap", "stability_ari", "validity", "sizes"):
        assert m["segments"][key] == m0["segments"][key], key
    assert m["lifecycle"]["quality"] == m0["lifecycle"]["quality"]
    assert m0["predictions"]["made_in"] == "background worker"
    assert m["predictions"]["scores"] == m0["predictions"]["scores"]
    assert scores[0] == scores[1] and len(scores[0]) == 3 * 600


def test_a_small_shops_map_is_laid_out_after_the_checks_beside_the_evaluation(
        built_demo_store, tmp_path, monkeypatch):
    """On a small shop the evaluation starts after the descriptions and the map only once the
    quality checks are done, so the evaluation (the last step to finish) has a core to itself
    meanwhile. Same figures as ever: the same evaluation as the fixture's build."""
    import core.embed as pipeline_embed
    import core.engine.background as bg
    import core.segments.lifecycle as lc

    calls = []
    submit, quality = bg.Worker.submit, lc.lifecycle_quality

    def logged_submit(self, target, *args, **kwargs):
        calls.append(target.rsplit(":", 1)[1])
        return submit(self, target, *args, **kwargs)

    def logged_quality(*args, **kwargs):
        calls.append("checks")
        return quality(*args, **kwargs)

    def logged_preload(self, modules, then=None):
        calls.append(f"warm {self.name}" + (f" {then.rsplit(':', 1)[1]}" if then else ""))
        f = preload(self, modules, then)
        warmed.append(f)
        return f

    def logged_embed(*args, **kwargs):  # the embed stage (the encoder checks it again)
        if "embed" not in calls:
            calls.append("embed")
        return embed(*args, **kwargs)

    preload = bg.Worker.preload
    warmed = []
    embed = pipeline_embed.embed_items
    monkeypatch.setattr(bg.Worker, "submit", logged_submit)
    monkeypatch.setattr(bg.Worker, "preload", logged_preload)
    monkeypatch.setattr(pipeline_embed, "embed_items", logged_embed)
    monkeypatch.setattr(lc, "lifecycle_quality", logged_quality)
    path = tmp_path / "order.duckdb"
    shutil.copyfile(built_demo_store.path, path)
    store = Store(path)
    m = build(store, BuildParams(seed=7))
    # the evaluation's worker, then the map's, import their modules while this process imports
    # its own and loads the text model (when the map's starts depends on the machine); the map's
    # loads UMAP's kernels after the embedding (which uses both cores)
    assert calls[0] == "warm evaluate"
    assert calls.index("warm map") < calls.index("warm map warm_layout")
    assert [c for c in calls if c != "warm map"] == [
        "warm evaluate", "embed", "warm map warm_layout", "predict_file", "evaluate_file",
        "checks", "embed_2d"]
    assert [f.exception(timeout=60) for f in warmed] == [None] * 3
    assert m["evaluate"]["evaluated_in"] == "background worker"
    with store.read() as con:
        first = list_runs(con, "build")[-2]["run_id"]
        rows = [con.execute("SELECT recommender, ndcg10, recall10 FROM evaluations "
                            "WHERE run_id = ? ORDER BY recommender", [r]).fetchall()
                for r in (first, m["run_id"])]
    assert rows[0] == rows[1] and len(rows[0]) >= 5


def test_prewarm_starts_workers_one_after_another_with_their_modules_loaded(monkeypatch):
    """``prewarm`` starts each named worker in turn, once the one before has imported its
    modules and run its ``then``; a later job there finds the modules loaded (none new), and a
    preload is not a running job for ``busy``. A preload that fails is left out of the result
    and the next one still starts."""
    from core.engine import background as bg

    monkeypatch.delenv("SEGSTUDIO_IN_PROCESS", raising=False)
    monkeypatch.delenv("SEGSTUDIO_MAP_IN_PROCESS", raising=False)
    if not bg.enabled():
        pytest.skip("one core: no background workers")
    names = ("test-warm-a", "test-warm-b", "test-warm-c")
    try:
        done = bg.prewarm([(names[0], ("colorsys",), None),
                           (names[1], ("no_such_module_here",), None),
                           (names[2], ("wave", "colorsys"), "core.engine.background:enabled")])
        assert bg.busy() == 0
        assert done.result(timeout=120) == [names[0], names[2]]
        for name, module in ((names[0], "colorsys"), (names[2], "wave")):
            again = bg.worker(name).submit("core.engine.background:import_modules", (module,))
            assert again.result(timeout=60) == 0, name       # imported by the preload
        fresh = bg.worker(names[1]).submit("core.engine.background:import_modules", ("wave",))
        assert fresh.result(timeout=60) == 1
    finally:
        for name in names:
            bg.discard(name)


def test_failed_build_leaves_the_last_complete_run_serving(built_demo_store, tmp_path, monkeypatch):
    path = tmp_path / "copy.duckdb"
    shutil.copyfile(built_demo_store.path, path)
    store = Store(path)
    before = store.version()

    def broken(*a, **kw):
        raise RuntimeError("map stage crashed")

    import core.maps.umap_map

    monkeypatch.setattr(core.maps.umap_map, "finish_map", broken)
    with pytest.raises(RuntimeError, match="map stage crashed"):
        build(store, BuildParams(seed=7, evaluate=False))
    assert store.version() == before  # nothing was published
    con = store.read()
    try:
        assert [r["run_id"] for r in list_runs(con, "build")] == [1]
        assert _one(con, "SELECT count(*) FROM runs WHERE status = 'running'") == 0
    finally:
        con.close()


def test_build_on_an_empty_store_says_what_to_do(tmp_store):
    with tmp_store.write():
        pass
    with pytest.raises(BuildError, match="segstudio demo"):
        build(tmp_store)


def test_baskets_without_shoppers_still_get_rules(tmp_store):
    # Anonymous baskets (the Groceries layout): no profiles or segments, but rules.
    baskets = [["milk", "bread"], ["milk", "bread", "eggs"], ["milk", "eggs"], ["bread", "eggs"],
               ["milk", "bread"]] * 4
    with tmp_store.write() as con:
        items = sorted({i for b in baskets for i in b})
        con.executemany("INSERT INTO items (item_id, title) VALUES (?, ?)", [[i, i] for i in items])
        rows, eid = [], 0
        for b_i, b in enumerate(baskets):
            for item in b:
                eid += 1
                rows.append([eid, None, item, "purchase", None, 1.0, None, str(b_i), None, 1, eid])
        con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    metrics = build(tmp_store, BuildParams(min_support=0.2, min_confidence=0.5))
    assert metrics["n_users"] == 0
    assert set(metrics["skipped"]) == {"encoder", "profiles", "lifecycle", "segments", "describe",
                                       "map", "predictions", "evaluate"}
    con = tmp_store.read()
    try:
        rules = con.execute(
            "SELECT antecedent, consequent, support, confidence FROM rules WHERE run_id = ? "
            "ORDER BY confidence DESC, antecedent, consequent", [metrics["run_id"]]).fetchall()
    finally:
        con.close()
    # milk => bread: milk in 16 of 20 baskets, milk & bread in 12 -> support 0.6, confidence 0.75
    assert (["milk"], ["bread"], pytest.approx(0.6), pytest.approx(0.75)) in [
        (list(a), list(c), s, cf) for a, c, s, cf in rules]


def test_build_command_prints_the_segments_and_json(built_demo_store, tmp_path, capsys):
    path = tmp_path / "cli.duckdb"
    shutil.copyfile(built_demo_store.path, path)
    assert main(["build", "--db", str(path), "--k", "4", "--seed", "7", "--no-evaluate",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["k"] == 4
    assert [s["segment_id"] for s in out["segments"] if s["lens"] == "taste"] == [0, 1, 2, 3]
    assert {s["lens"] for s in out["segments"]} == {"taste", "lifecycle"}
    assert "evaluate" not in out["stage_seconds"]
    assert main(["build", "--db", str(path), "--k", "1"]) == 2
    assert "k must be at least 2" in capsys.readouterr().err


def test_a_ratings_shop_builds_and_says_why_it_has_no_evaluation(tmp_path):
    """A ratings file has reviews but no purchases: the build completes (segments, map, rules)
    and records why the recommenders were not evaluated, instead of failing at the last stage."""
    from core.ingest import ingest_file

    lines = []
    for u in range(1, 61):
        for k in range(8):
            item = (u % 3) * 10 + (k * 7 + u) % 10 + 1
            lines.append(f"{u}\t{item}\t{1 + (u + k) % 5}\t{881250949 + u * 1000 + k * 86400}")
    (tmp_path / "u.data").write_text("\n".join(lines) + "\n")
    store = Store(tmp_path / "ratings.duckdb")
    r = ingest_file(store, tmp_path / "u.data", "events", mapping={
        "header": False, "epoch": True, "columns": {"user": 1, "item": 2, "rating": 3, "time": 4}})
    assert r["rows_loaded"] == 480
    m = build(store, BuildParams(seed=3))
    assert "evaluate" not in m["stage_seconds"]
    assert m["skipped"]["evaluate"].startswith("No shopper has two or more purchase baskets")
    con = store.read()
    try:
        assert _one(con, "SELECT count(*) FROM segments WHERE run_id = ?", m["run_id"]) == 60
        assert _one(con, "SELECT count(*) FROM user_map WHERE run_id = ?", m["run_id"]) == 60
        assert _one(con, "SELECT status FROM runs WHERE run_id = ?", m["run_id"]) == "complete"
    finally:
        con.close()


def test_a_build_reads_the_sequences_once_and_a_very_large_one_predicts_without_the_encoder(
        tmp_path, monkeypatch):
    """Every stage that needs the shoppers' sequences (the encoder, the profiles, the segments,
    the predictions' encoder) gets them from one read of the store; and above
    ``ENCODER_MAX_SHOPPERS`` (lowered to 100 of this 150-shopper shop) the predictions use the
    behaviour features only, which the run and the Model page's notes say."""
    import core.encoder.data as ed
    from core.demo import generate_demo
    from core.explore.model import sampling_notes
    from core.predictions import stage as ps

    reads = []
    real = ed._read_sequences
    monkeypatch.setattr(ed, "_read_sequences", lambda con, ids: reads.append(1) or real(con, ids))
    store = Store(tmp_path / "shop.duckdb")
    generate_demo(store, users=150, seed=5)
    m = build(store, BuildParams(seed=5, evaluate=False))
    assert len(reads) == 1 and "encoder" in m["predictions"] and not m["predictions"][
        "encoder"].get("scale")
    monkeypatch.setattr(ps, "ENCODER_MAX_SHOPPERS", 100)
    m = build(store, BuildParams(seed=5, evaluate=False))
    assert len(reads) == 2 and m["predictions"]["encoder"]["scale"] is True
    assert m["predictions"]["encoder"]["skipped"].startswith("150 shoppers: above 100 the")
    assert [n["step"] for n in sampling_notes(m)] == ["predictions"]
    con = store.read()
    try:
        n = _one(con, "SELECT count(DISTINCT user_id) FROM predictions WHERE run_id = ?",
                 m["run_id"])
    finally:
        con.close()
    assert n == 150
