"""Settings, resolved in this order: command-line flag > environment variable > TOML file > default.

TOML file: ``--config PATH``, else ``$SEGSTUDIO_CONFIG``, else ``./segstudio.toml`` if present.

    # segstudio.toml
    db = "data/shop.duckdb"          # the store (env: SEGSTUDIO_DB)
    text_model = "all-MiniLM-L6-v2"  # sentence-transformers model (env: SEGSTUDIO_TEXT_MODEL)
    device = "auto"                  # auto | cpu | cuda (env: SEGSTUDIO_DEVICE)
    seed = 42                        # (env: SEGSTUDIO_SEED)
    keep_runs = 5                    # complete builds kept in the store (env: SEGSTUDIO_KEEP_RUNS)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_DB = Path("data") / "segstudio.duckdb"
DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
# How many float32 scores a block of shoppers x catalogue items holds where a step makes several
# passes over it (softmax, blend, mask, top-k): ~4 MB, which stays in a core's cache, where one
# array of tens of megabytes went to memory on every pass. Each block's figures are those of the
# whole. Online Retail: a window of taste inputs 3.4 -> 1.9 s, the evaluation's weight tuning
# (the evaluation alone 13.3-15.8 -> 12.3-12.6 s).
CACHE_BLOCK_SCORES = 1_000_000

_ENV = {
    "db": "SEGSTUDIO_DB",
    "text_model": "SEGSTUDIO_TEXT_MODEL",
    "device": "SEGSTUDIO_DEVICE",
    "seed": "SEGSTUDIO_SEED",
    "keep_runs": "SEGSTUDIO_KEEP_RUNS",
}


@dataclass
class Settings:
    db: Path = DEFAULT_DB
    text_model: str = DEFAULT_TEXT_MODEL
    device: str = "auto"
    seed: int = 42
    keep_runs: int = 5
    config_file: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def store(self):
        from core.store import Store

        return Store(self.db)


class ConfigError(ValueError):
    pass


def _find_config_file(explicit: str | os.PathLike | None) -> Path | None:
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise ConfigError(f"Config file {p} does not exist. Check the path given to --config.")
        return p
    env = os.environ.get("SEGSTUDIO_CONFIG")
    if env:
        p = Path(env)
        if not p.is_file():
            raise ConfigError(f"SEGSTUDIO_CONFIG points to {p}, which does not exist.")
        return p
    p = Path("segstudio.toml")
    return p if p.is_file() else None


def load_settings(config: str | os.PathLike | None = None, **overrides: Any) -> Settings:
    """Resolve settings. ``overrides`` are command-line values; None means 'not given'."""
    s = Settings()
    path = _find_config_file(config)
    if path is not None:
        import tomllib  # only with a settings file (the command line starts faster without)

        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML ({e}). Fix the file or remove it.") from e
        known = {f.name for f in fields(Settings)}
        for k, v in data.items():
            if k in known and k not in ("config_file", "extra"):
                setattr(s, k, v)
            else:
                s.extra[k] = v
        s.config_file = path
    for key, env in _ENV.items():
        if os.environ.get(env):
            setattr(s, key, os.environ[env])
    for key, v in overrides.items():
        if v is not None:
            setattr(s, key, v)
    s.db = Path(s.db)
    s.seed = int(s.seed)
    try:
        s.keep_runs = int(s.keep_runs)
    except (TypeError, ValueError):
        raise ConfigError(f"keep_runs must be a whole number of builds (got {s.keep_runs!r}).") from None
    if s.keep_runs < 1:
        raise ConfigError(f"keep_runs must be at least 1 (got {s.keep_runs}): the newest build is "
                          f"always kept.")
    if s.device not in ("auto", "cpu", "cuda") and not str(s.device).startswith("cuda:"):
        raise ConfigError(f"device must be auto, cpu or cuda (got {s.device!r}).")
    return s


def duckdb_memory_limit(fraction: float = 0.25, floor_gb: float = 2.0) -> str:
    """The memory DuckDB may hold in a build (``SET memory_limit``): ``SEGSTUDIO_DUCKDB_MEMORY``
    (e.g. "4GB"), else ``fraction`` (a quarter) of this machine's memory, at least ``floor_gb``. DuckDB's default (80 %)
    lets its buffers keep what one large query used: reading a million shoppers' 80 M
    interactions peaked at 13.2 GB and kept 10.1 GB with the default, 5.6 GB and 2.5 GB with
    2 GB (more is spilled to disk, beside the store)."""
    env = os.environ.get("SEGSTUDIO_DUCKDB_MEMORY", "").strip()
    if env:
        return env
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return f"{floor_gb:g}GB"
    return f"{max(floor_gb, total * fraction / 2**30):.1f}GB"


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (its flags list avx512_bf16 or amx_bf16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
