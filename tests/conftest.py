"""Shared fixtures. Real datasets are read in place from ../shared/data (never copied)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SEGSTUDIO_SHARED_DATA", ROOT.parent / "shared" / "data"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "README.md").is_file():
        pytest.fail(
            f"The real datasets are expected at {SHARED_DATA} (../shared/data beside the project). "
            "Set SEGSTUDIO_SHARED_DATA to their folder."
        )
    return SHARED_DATA


@pytest.fixture()
def tmp_store(tmp_path):
    from core.store import Store

    return Store(tmp_path / "store.duckdb")


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory):
    """A small generated demo shop (600 users), shared read-only by tests."""
    from core.demo import generate_demo
    from core.store import Store

    store = Store(tmp_path_factory.mktemp("demo") / "demo.duckdb")
    generate_demo(store, users=600, seed=7)
    return store


@pytest.fixture(scope="session")
def built_demo_store(demo_store, tmp_path_factory):
    """The demo shop after a full default build (copied, so demo_store stays unbuilt)."""
    import shutil

    from core.pipeline import BuildParams, build
    from core.store import Store

    path = tmp_path_factory.mktemp("built") / "built.duckdb"
    shutil.copyfile(demo_store.path, path)
    store = Store(path)
    build(store, BuildParams(seed=7))
    return store


@pytest.fixture()
def tiny_db(tmp_path, monkeypatch):
    """The hand-made store of test_explore (exact figures), served to the dashboard's tests: no
    config file, no currency override, no secrets file chosen by `segstudio serve`."""
    from test_explore import make_tiny_store

    store = make_tiny_store(tmp_path / "tiny.duckdb")
    monkeypatch.setenv("SEGSTUDIO_DB", str(store.path))
    for var in ("SEGSTUDIO_CONFIG", "SEGSTUDIO_CURRENCY", "SEGSTUDIO_SECRETS"):
        monkeypatch.delenv(var, raising=False)
    return store
