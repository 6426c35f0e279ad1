"""`segstudio --help` and `segstudio status` start fast: heavy libraries are imported by the
commands that use them, when they run (bench/bench_cli.py times the start)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "numpy", "pyarrow", "torch", "sklearn", "numba", "umap", "streamlit",
         "sentence_transformers", "scipy", "plotly", "ray")
CODE = """
import contextlib, io, sys
from core.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        code = main({argv!r})
    except SystemExit as e:
        code = e.code
assert code in (0, None), out.getvalue()
print(" ".join(m for m in {heavy!r} if m in sys.modules))
"""


def _heavy_modules(argv: list[str]) -> set[str]:
    out = subprocess.run([sys.executable, "-c", CODE.format(argv=argv, heavy=HEAVY + ("duckdb",))],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return set(out.split())


def test_help_imports_no_heavy_library():
    assert _heavy_modules(["--help"]) == set()
    assert _heavy_modules(["rules", "--help"]) == set()
    assert _heavy_modules(["build", "--help"]) == set()  # Ray only with --engine ray


def test_status_imports_only_duckdb(demo_store):
    assert _heavy_modules(["status", "--db", str(demo_store.path)]) <= {"duckdb"}
