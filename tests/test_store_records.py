"""Small writes (saved segments) live in the records file: they never copy the store or wait for a
build, keep the store's guarantees, and builds prune old runs (retention)."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from core import explore as ex
from core.store import Store, StoreError, finish_run, latest_run, start_run
from core.store.records import records_path, runs_in_use
from core.store.retention import prune_runs, run_scoped_tables

_BUILD = textwrap.dedent(
    """
    import sys, time
    from core.store import Store, start_run
    store = Store(sys.argv[1])
    with store.write() as con:           # what `segstudio build` does for its whole run
        start_run(con, "build", {"slow": True})
        con.execute("INSERT INTO users VALUES ('half-way', '{}', NULL, NULL)")
        print("building", flush=True)
        time.sleep(120)
    """
)

_SAVE_KILLED = textwrap.dedent(
    """
    import sys, time
    from core.store import Store
    store = Store(sys.argv[1])
    with store.write_records() as con:
        con.execute("DELETE FROM saved_segment_members")
        con.execute("INSERT INTO saved_segments VALUES (99, 'half', '', NULL, NULL, '{}')")
        print("saving", flush=True)
        time.sleep(120)
    """
)


def _store_with_users(path, n=4) -> Store:
    store = Store(path)
    with store.write() as con:
        for i in range(n):
            con.execute("INSERT INTO users VALUES (?, '{}', NULL, NULL)", [f"u{i}"])
        r = start_run(con, "build", {})
        finish_run(con, r, {})
    return store


def _start(script: str, *args) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", script, *map(str, args)],
                            stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    assert proc.stdout.readline().strip() in ("building", "saving")
    return proc


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_a_save_completes_while_a_build_holds_the_store(tmp_path):
    store = _store_with_users(tmp_path / "shop.duckdb")
    before = store.version()
    build = _start(_BUILD, store.path)
    try:
        done, errors = {}, []

        def save():
            t0 = time.perf_counter()
            try:
                done["id"] = ex.save_segment(store, "Saved during a build", ["u1", "u2"],
                                             source_run_id=1)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
            done["seconds"] = time.perf_counter() - t0

        t = threading.Thread(target=save)
        t.start()
        t.join(timeout=30)  # bounded wait: the build sleeps 120 s holding the store's lock
        assert not t.is_alive(), "the save waited for the build"
        assert not errors, errors
        print(f"\nsave while a build holds the store: {done['seconds'] * 1000:.0f} ms")
        assert build.poll() is None  # the build is still running: the save did not wait for it
        con = store.read()
        assert ex.saved_members(con, done["id"]) == ["u1", "u2"]
        assert con.execute("SELECT count(*) FROM users").fetchone()[0] == 4  # no half build
        # the save did not touch the store file itself
        assert store.version().data_key == before.data_key
    finally:
        _kill(build)
    assert ex.find_saved(store.read(), "Saved during a build")["saved_id"] == done["id"]


def test_a_save_copies_the_records_file_not_the_store(tmp_path, monkeypatch):
    store = _store_with_users(tmp_path / "shop.duckdb")
    ex.save_segment(store, "first", ["u0"])
    copied = []
    real = shutil.copyfile
    monkeypatch.setattr(shutil, "copyfile", lambda a, b, **k: (copied.append(str(a)), real(a, b, **k))[1])
    ex.save_segment(store, "second", ["u1"])
    ex.delete_saved(store, 1)
    assert copied == [str(records_path(store.path))] * 2
    assert records_path(store.path).name == "shop.records.duckdb"


def test_killed_save_leaves_the_last_saved_state(tmp_path):
    store = _store_with_users(tmp_path / "shop.duckdb")
    sid = ex.save_segment(store, "kept", ["u0", "u3"])
    before = store.version()
    proc = _start(_SAVE_KILLED, store.path)
    try:
        # readers are not blocked and do not see the half-done save
        assert ex.saved_members(store.read(), sid) == ["u0", "u3"]
    finally:
        _kill(proc)
    assert store.version() == before
    assert list(ex.list_saved(store.read())["name"]) == ["kept"]
    ex.save_segment(store, "after", ["u1"])  # the next writer cleans the dead one's shadow
    assert sorted(ex.list_saved(store.read())["name"]) == ["after", "kept"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_failed_copy_on_a_full_disk_leaves_no_file_behind(tmp_path, monkeypatch):
    store = _store_with_users(tmp_path / "shop.duckdb")
    before = store.version()

    def full_disk(src, dst, **kw):
        with open(dst, "wb") as f:
            f.write(b"half a copy")
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(shutil, "copyfile", full_disk)
    with pytest.raises(StoreError, match="disk is full"):
        with store.write() as con:
            con.execute("INSERT INTO users VALUES ('x', '{}', NULL, NULL)")
    assert store.version() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop.duckdb", "shop.duckdb.lock"]


def test_saved_segments_of_an_older_store_are_read_and_carried_over(tmp_path):
    store = _store_with_users(tmp_path / "old.duckdb")
    with store.write() as con:  # how stores made before the records file kept saved segments
        con.execute("CREATE TABLE saved_segments (saved_id INTEGER NOT NULL, name VARCHAR NOT NULL, "
                    "description VARCHAR, created_at TIMESTAMP, source_run_id INTEGER, definition JSON)")
        con.execute("CREATE TABLE saved_segment_members (saved_id INTEGER NOT NULL, user_id VARCHAR NOT NULL)")
        con.execute("INSERT INTO saved_segments VALUES (1, 'Old one', '', NULL, 1, '{}')")
        con.execute("INSERT INTO saved_segment_members VALUES (1, 'u2'), (1, 'u3')")
    assert not records_path(store.path).exists()
    assert list(ex.list_saved(store.read())["name"]) == ["Old one"]
    ex.save_segment(store, "New one", ["u0"], source_run_id=1)
    con = store.read()
    assert sorted(ex.list_saved(con)["name"]) == ["New one", "Old one"]
    assert ex.saved_members(con, 1) == ["u2", "u3"]
    assert runs_in_use(store.path) == {1}


def _fake_build(con, n_rows: int) -> int:
    r = start_run(con, "build", {})
    con.execute("INSERT INTO segments SELECT ?, 'u' || i, i % 5, 0.5 FROM range(?) t(i)", [r, n_rows])
    con.execute("INSERT INTO profiles SELECT ?, 'u' || i, [i::FLOAT, 1.0, 2.0, 3.0] FROM range(?) t(i)",
                [r, n_rows])
    finish_run(con, r, {})
    return r


def test_retention_keeps_the_last_runs_and_any_run_a_saved_segment_uses(tmp_path):
    store = Store(tmp_path / "shop.duckdb")
    with store.write() as con:
        for _ in range(3):
            _fake_build(con, 10)
    ex.save_segment(store, "From build 2", ["u1"], source_run_id=2)
    with store.write() as con:
        for _ in range(5):
            _fake_build(con, 10)
        result = prune_runs(con, keep=3, protect=runs_in_use(store.path))
    assert result == {"pruned": [1, 3, 4, 5], "kept": [2, 6, 7, 8], "protected": [2]}
    con = store.read()
    for t in ("segments", "profiles"):
        assert [r[0] for r in con.execute(f"SELECT DISTINCT run_id FROM {t} ORDER BY 1").fetchall()] \
            == [2, 6, 7, 8], t
    assert dict(con.execute("SELECT status, count(*) FROM runs GROUP BY 1").fetchall()) == \
        {"complete": 4, "pruned": 4}
    assert latest_run(con)["run_id"] == 8
    assert {"segments", "profiles", "user_map", "rules"} <= set(run_scoped_tables(con))
    with pytest.raises(ValueError, match="at least 1"):
        prune_runs(con, keep=0)


def test_pruned_store_stops_growing(tmp_path):
    pruned, unpruned = Store(tmp_path / "p.duckdb"), Store(tmp_path / "u.duckdb")
    sizes = {"p": [], "u": []}
    for _ in range(8):
        for key, store in (("p", pruned), ("u", unpruned)):
            with store.write() as con:
                _fake_build(con, 40_000)
                if key == "p":
                    prune_runs(con, keep=2)
            sizes[key].append(store.path.stat().st_size)
    print(f"\nstore size after each build, MB: kept 2 {[round(s / 1e6, 1) for s in sizes['p']]}, "
          f"kept all {[round(s / 1e6, 1) for s in sizes['u']]}")
    assert sizes["p"][-1] <= 1.25 * max(sizes["p"][:3])
    assert sizes["u"][-1] > 1.8 * sizes["p"][-1]


@pytest.mark.parametrize("content, fix", [
    (b"hello, I am a text file\n", "not a Segment Studio store"),
    (b"SQLite format 3\x00" + bytes(4000), "not a Segment Studio store"),
    (b"", "empty file"),
])
def test_a_db_that_is_not_a_store_is_refused_in_one_line(tmp_path, capsys, content, fix):
    from core.cli import main

    db = tmp_path / "thing.duckdb"
    db.write_bytes(content)
    for argv in (["status", "--db", str(db)],
                 ["ingest", str(tmp_path / "x.csv"), "--format", "baskets", "--db", str(db), "-q"]):
        (tmp_path / "x.csv").write_text("bread,milk\n")
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and fix in err[0] and str(db) in err[0], err
    assert db.read_bytes() == content  # never overwritten
    assert main(["status", "--db", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_replacing_the_demo_shop_drops_its_saved_segments(tmp_path):
    from core.demo import generate_demo

    store = Store(tmp_path / "demo.duckdb")
    generate_demo(store, users=60, seed=1)
    ex.save_segment(store, "Old shoppers", ["anyone"])
    generate_demo(store, users=70, seed=1, force=True)
    assert ex.list_saved(store.read()).empty
