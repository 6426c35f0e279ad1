"""The store's promises: writes are all-or-nothing, readers never block or see half a build."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import duckdb
import pytest

from core.config import ConfigError, load_settings
from core.store import Store, StoreNotFound, finish_run, latest_run, list_runs, start_run
from core.store.schema import SCHEMA_VERSION, SchemaVersionError


def _add_user(store: Store, uid: str) -> None:
    with store.write() as con:
        con.execute("INSERT INTO users VALUES (?, '{}', NULL, NULL)", [uid])


def _users(store: Store) -> list[str]:
    con = store.read()
    try:
        return [r[0] for r in con.execute("SELECT user_id FROM users ORDER BY 1").fetchall()]
    finally:
        con.close()


def test_missing_store_has_a_helpful_error(tmp_store):
    with pytest.raises(StoreNotFound, match="segstudio demo"):
        tmp_store.read()


def test_write_publishes_and_records_schema_version(tmp_store):
    _add_user(tmp_store, "u1")
    con = tmp_store.read()
    assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(
        SCHEMA_VERSION
    )
    assert _users(tmp_store) == ["u1"]
    # nothing but the store and its lock file is left behind
    assert sorted(p.name for p in tmp_store.path.parent.iterdir()) == ["store.duckdb", "store.duckdb.lock"]


def test_failed_write_changes_nothing(tmp_store):
    _add_user(tmp_store, "u1")
    before = tmp_store.version()
    with pytest.raises(RuntimeError, match="boom"):
        with tmp_store.write() as con:
            con.execute("INSERT INTO users VALUES ('u2', '{}', NULL, NULL)")
            raise RuntimeError("boom")
    assert tmp_store.version() == before
    assert _users(tmp_store) == ["u1"]
    assert not list(tmp_store.path.parent.glob(".*.tmp"))


def test_open_reader_keeps_working_through_a_write_and_new_readers_see_it(tmp_store):
    _add_user(tmp_store, "u1")
    old = tmp_store.read()
    _add_user(tmp_store, "u2")
    # the old connection still reads its consistent snapshot
    assert old.execute("SELECT count(*) FROM users").fetchone()[0] == 1
    assert _users(tmp_store) == ["u1", "u2"]


def test_only_complete_runs_are_served(tmp_store):
    with tmp_store.write() as con:
        r1 = start_run(con, "build", {"k": 3})
        finish_run(con, r1, {"silhouette": 0.4})
    with pytest.raises(ValueError):
        with tmp_store.write() as con:
            start_run(con, "build", {"k": 5})
            raise ValueError("stage failed")
    con = tmp_store.read()
    run = latest_run(con)
    assert run["run_id"] == r1 and run["params"] == {"k": 3} and run["metrics"] == {"silhouette": 0.4}
    assert [r["run_id"] for r in list_runs(con)] == [r1]


_SLOW_WRITER = textwrap.dedent(
    """
    import sys, time
    from core.store import Store, start_run
    store = Store(sys.argv[1])
    with store.write() as con:
        start_run(con, "build", {"slow": True})
        con.execute("INSERT INTO users VALUES ('half-way', '{}', NULL, NULL)")
        print("writing", flush=True)
        time.sleep(60)
    """
)


def _start_slow_writer(path):
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_WRITER, str(path)],
        stdout=subprocess.PIPE, text=True, cwd=os.getcwd(),
    )
    assert proc.stdout.readline().strip() == "writing"
    return proc


def test_killed_build_leaves_last_complete_state_and_readers_unblocked(tmp_store):
    _add_user(tmp_store, "u1")
    before = tmp_store.version()
    proc = _start_slow_writer(tmp_store.path)
    try:
        # while the build is in progress, another process can read the store (no lock conflict)
        out = subprocess.run(
            [sys.executable, "-c",
             "import sys, duckdb; c = duckdb.connect(sys.argv[1], read_only=True);"
             "print(c.execute('select count(*) from users').fetchone()[0])", str(tmp_store.path)],
            capture_output=True, text=True, timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "1"
        assert list(tmp_store.path.parent.glob(".store.duckdb.*.tmp"))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert tmp_store.version() == before
    assert _users(tmp_store) == ["u1"]
    # a large build spills DuckDB's memory to a folder beside its shadow; a killed one leaves it
    shadow = list(tmp_store.path.parent.glob(".store.duckdb.*.tmp"))[0]
    spill = shadow.with_name(shadow.name + ".tmp")
    spill.mkdir()
    (spill / "duckdb_temp_block-0.block").write_bytes(b"x" * 10)
    # the next writer cleans the dead writer's shadow (and spill folder) and works normally
    _add_user(tmp_store, "u2")
    assert _users(tmp_store) == ["u1", "u2"]
    assert not list(tmp_store.path.parent.glob(".store.duckdb.*.tmp"))


def test_writers_queue_instead_of_racing(tmp_store):
    _add_user(tmp_store, "u1")
    proc = _start_slow_writer(tmp_store.path)
    try:
        with pytest.raises(RuntimeError, match="Another ingest or build"):
            with tmp_store.write(wait=False):
                pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_newer_schema_is_refused_with_a_fix(tmp_store):
    _add_user(tmp_store, "u1")
    con = duckdb.connect(str(tmp_store.path))
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(SchemaVersionError, match="Upgrade Segment Studio"):
        with tmp_store.write():
            pass


def test_settings_precedence_flag_env_file_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SEGSTUDIO_DB", raising=False)
    monkeypatch.delenv("SEGSTUDIO_CONFIG", raising=False)
    assert str(load_settings().db) == "data/segstudio.duckdb"
    (tmp_path / "segstudio.toml").write_text('db = "from_file.duckdb"\ntext_model = "my-model"\n')
    s = load_settings()
    assert str(s.db) == "from_file.duckdb" and s.text_model == "my-model"
    assert s.config_file.name == "segstudio.toml"
    monkeypatch.setenv("SEGSTUDIO_DB", "from_env.duckdb")
    assert str(load_settings().db) == "from_env.duckdb"
    assert str(load_settings(db="from_flag.duckdb").db) == "from_flag.duckdb"
    (tmp_path / "bad.toml").write_text("db = ")
    with pytest.raises(ConfigError, match="bad.toml"):
        load_settings("bad.toml")
    with pytest.raises(ConfigError, match="device"):
        load_settings(device="tpu")


def test_run_params_and_metrics_round_trip_as_json(tmp_store):
    import numpy as np

    with tmp_store.write() as con:
        r = start_run(con, "build", {"method": "kmeans", "k_range": [3, 12]})
        finish_run(con, r, {"silhouette": np.float32(0.25), "sizes": {"0": 10}})
    run = latest_run(tmp_store.read())
    assert run["params"]["k_range"] == [3, 12]
    assert run["metrics"]["silhouette"] == pytest.approx(0.25)
    assert json.loads(json.dumps(run["metrics"]))["sizes"] == {"0": 10}


def test_cursor_for_another_thread_reads_the_same_snapshot(tmp_store):
    import threading

    _add_user(tmp_store, "u1")
    con = tmp_store.read()
    results = []

    def work():
        cur = con.cursor()
        results.append(cur.execute("SELECT count(*) FROM users").fetchone()[0])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [1, 1, 1, 1]
