"""The Ray engine: the build's heavy stages on a Ray cluster (or on this machine, in local mode).

- item text embedding: Ray Data ``map_batches`` over shards of the texts (sorted by length, as
  in one process, so batches pad alike), one actor per worker holding the text model;
- profile inference: DuckDB writes the events of shoppers with an id as Parquet partitioned by
  ``shard = hash(user_id) % n`` (every shopper's events in one shard); each actor reads whole
  shards and runs the same code as one process (``load_sequences`` + ``_pooled``) on them, so the
  driver never holds the events and the vectors equal the local ones up to float tolerance;
- encoder training: Ray Train's ``TorchTrainer`` with DDP (``core/engine/ray_train.py``);
- segment assignment under a fitted segmentation: Ray tasks over chunks of rows, each running
  ``TasteModel.assign`` (rows are independent, so the labels are the same);
- recommendation scoring for many shoppers (``map_chunks``, used by ``core.recommend.bulk`` for
  campaign lists): Ray tasks over batches of shoppers, the fitted recommenders put in the object
  store once; every shopper's list is scored on its own, so the lists are the same.

Results come back to the driver, which writes them through the store's normal write path.

On a cluster, the shard files and the training checkpoint must be on storage every node
mounts: ``--shard-dir`` (default: a temporary folder on this machine, fine in local mode).
Worker nodes need the same Python packages (``pip install 'segment-studio[ray]'``); this
project's code travels with the job (``py_modules``).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import numpy as np

from core.engine import Engine, EngineError
from core.progress import NULL, Progress

DEFAULT_WORKERS = 2
SHARDS_PER_WORKER = 4
INSTALL_HINT = ("pip install 'segment-studio[ray]' (or pip install 'ray[data,train]>=2.40,<3'), "
                "or build without --engine ray")


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
        import ray.train.torch  # noqa: F401
    except ImportError as e:
        raise EngineError(f"--engine ray needs Ray (Ray Data and Ray Train), which is not "
                          f"installed here ({e.name or e}): {INSTALL_HINT}.") from None
    return ray


def check_reachable(address: str, timeout: float = 3.0) -> None:
    """Fail in seconds, with the fix, when nothing listens at ``address`` (HOST:PORT or
    ray://HOST:PORT); 'auto' is left to Ray."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[1] if "://" in address else address
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise EngineError(f"--address {address!r} is not a Ray address: give HOST:PORT (a node of "
                          "the cluster, e.g. 10.0.0.5:6379) or ray://HOST:10001 (Ray Client).")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise EngineError(
            f"Cannot reach a Ray cluster at {address} ({e.strerror or type(e).__name__}). Start "
            "one with `ray start --head` on that machine (it prints the address to use), check "
            "the host, port and firewall, or leave --address out to run Ray on this machine."
        ) from None


_ASSIGN = None


def _assign_task():
    """The remote function, made once Ray is imported (this module must import without it)."""
    global _ASSIGN
    if _ASSIGN is None:
        import ray

        @ray.remote(num_cpus=1)
        def assign_rows(model, X, Q):
            return model.assign(X, Q)

        _ASSIGN = assign_rows
    return _ASSIGN


def _resolve(value):
    import ray

    return ray.get(value) if isinstance(value, ray.ObjectRef) else value


class _TextShard:
    """Ray Data actor: the text model loaded once, a batch of texts -> their vectors."""

    def __init__(self, model_name: str, device: str):
        from core.embed import TextEmbedder

        self.embedder = TextEmbedder(model_name, device)

    def __call__(self, batch: dict) -> dict:
        V = self.embedder.encode([str(t) for t in batch["text"]])
        return {"i": np.asarray(batch["i"]), "vector": V}


class _SequenceShard:
    """Ray Data actor: the encoder loaded once; a shard's Parquet folder -> each of its
    shoppers' pooled sequence vector (the code one process runs, on the shard's events)."""

    def __init__(self, config, weights, item_ids, pooling: str, device: str):
        from core.encoder.runtime import _build_model

        self.item_ids = _resolve(item_ids)
        self.model, self.p = _build_model(config, _resolve(weights), device)
        self.pooling, self.device = pooling, device

    def __call__(self, batch: dict) -> dict:
        import duckdb

        from core.encoder.data import load_sequences
        from core.encoder.runtime import _pooled
        from core.encoder.train import torch_settings

        users, vecs = [], []
        for path in batch["path"]:
            if not Path(path).is_dir():
                raise FileNotFoundError(f"shard folder {path} is not visible on node "
                                        f"{socket.gethostname()}")
            con = duckdb.connect()
            try:
                glob = str(Path(path, "*.parquet")).replace("'", "''")
                con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{glob}')")
                seq = load_sequences(con, self.item_ids)
            finally:
                con.close()
            with torch_settings(self.device, 0, 1):
                vecs.append(_pooled(self.model, seq, self.pooling, self.device))
            users += seq.user_ids
        V = np.concatenate(vecs) if vecs else np.zeros((0, self.model.d), np.float32)
        return {"user_id": np.asarray(users, dtype=object), "vector": V}


class RayEngine(Engine):
    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None,
                 shard_dir: str | None = None):
        ray = _import_ray()
        self.address = address
        self.workers = int(workers or DEFAULT_WORKERS)
        if self.workers < 1:
            raise EngineError(f"--workers must be at least 1 (got {self.workers}).")
        if shard_dir is not None and not Path(shard_dir).is_dir():
            raise EngineError(f"--shard-dir {shard_dir} is not a folder: create it (on storage "
                              "every node of the cluster mounts) or leave it out.")
        self.shard_dir = shard_dir
        self._started = False
        if address:  # seconds, not Ray's minutes of retries, for a wrong address
            check_reachable(address)
        if not ray.is_initialized():
            root = str(Path(__file__).resolve().parents[2])
            env = {"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
                   "TRANSFORMERS_OFFLINE": os.environ.get("TRANSFORMERS_OFFLINE", "1")}
            if address:   # the code travels with the job to the cluster's nodes
                runtime_env = {"py_modules": [str(Path(root, "core"))], "env_vars": env}
            else:         # this machine: workers import this very checkout
                runtime_env = {"env_vars": {**env, "PYTHONPATH": os.pathsep.join(
                    [root] + [p for p in [os.environ.get("PYTHONPATH")] if p])}}
            try:
                ray.init(address=address, runtime_env=runtime_env, include_dashboard=False,
                         log_to_driver=False, configure_logging=False,
                         **({} if address else {"num_cpus": max(self.workers,
                                                                os.cpu_count() or 1)}))
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise EngineError(f"Could not connect to the Ray cluster at {address} "
                                  f"({' '.join(str(e).split())[:200]}). Check --address, or "
                                  "leave it out to run Ray on this machine.") from None
            self._started = True
        import logging

        import ray.data

        # the build shows its own progress bars; Ray Data's per-dataset log lines would
        # interleave with them
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        ray.data.DataContext.get_current().enable_progress_bars = False
        cpus = float(ray.cluster_resources().get("CPU", 0))
        if cpus < self.workers:
            self.close()
            raise EngineError(f"The Ray cluster has {cpus:g} CPU(s) for {self.workers} workers: "
                              f"use --workers {max(1, int(cpus))} or add nodes.")

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    def describe(self) -> dict:
        return {"engine": self.name, "workers": self.workers,
                "address": self.address or "local (this machine)"}

    def _gpus(self, device: str) -> int:
        if not str(device).startswith("cuda"):
            return 0
        import ray

        if float(ray.cluster_resources().get("GPU", 0)) < self.workers:
            raise EngineError(f"--device cuda with --engine ray needs {self.workers} GPU(s) in "
                              "the Ray cluster (one per worker): add GPU nodes, lower "
                              "--workers, or use --device cpu.")
        return 1

    def _map(self, rows: list[dict], cls, batch_size: int, device: str, kwargs: dict):
        import ray.data

        return ray.data.from_items(rows).map_batches(
            cls, batch_size=batch_size, fn_constructor_kwargs=kwargs,
            compute=ray.data.ActorPoolStrategy(size=self.workers), num_cpus=1,
            num_gpus=self._gpus(device), udf_modifying_row_count=True)

    def text_batch(self, n_texts: int) -> int:
        """Texts per shard: each worker's model embeds a shard in one call."""
        return max(32, -(-n_texts // (self.workers * SHARDS_PER_WORKER)))

    def embed_texts(self, texts: list[str], model_name: str, device: str,
                    progress_stage=None) -> np.ndarray:
        n = len(texts)
        if n == 0:
            return super().embed_texts(texts, model_name, device, progress_stage)
        order = np.argsort([len(t or "") for t in texts], kind="stable")
        rows = [{"i": int(i), "text": texts[i] or ""} for i in order]
        per = self.text_batch(n)
        ds = self._map(rows, _TextShard, per, device, {"model_name": model_name,
                                                      "device": device})
        out = None
        for b in ds.iter_batches(batch_size=None, batch_format="numpy"):
            V = np.asarray(b["vector"], dtype=np.float32)
            if out is None:
                out = np.zeros((n, V.shape[1]), np.float32)
            out[np.asarray(b["i"], dtype=np.int64)] = V
            if progress_stage is not None:
                progress_stage.advance(len(V))
        return out

    def sequence_vectors(self, con, config: dict, weights: bytes, item_ids: list[str],
                         pooling: str, device: str, progress: Progress = NULL
                         ) -> tuple[list[str], np.ndarray]:
        import ray

        n_shards = self.workers * SHARDS_PER_WORKER
        root = Path(tempfile.mkdtemp(prefix="segstudio-shards-", dir=self.shard_dir))
        try:
            target = str(root / "events").replace("'", "''")
            con.execute(f"""
                COPY (SELECT user_id, item_id, event_type, ts, event_id,
                             hash(user_id) % {n_shards} AS shard
                      FROM events WHERE user_id IS NOT NULL)
                TO '{target}' (FORMAT parquet, PARTITION_BY (shard))""")
            n_users = int(con.execute("SELECT count(DISTINCT user_id) FROM events "
                                      "WHERE user_id IS NOT NULL").fetchone()[0])
            shards = sorted(str(p) for p in (root / "events").glob("shard=*"))
            kwargs = {"config": config, "weights": ray.put(weights),
                      "item_ids": ray.put(list(item_ids)), "pooling": pooling, "device": device}
            ds = self._map([{"path": p} for p in shards], _SequenceShard, 1, device, kwargs)
            users: list[str] = []
            vecs = []
            with progress.stage(f"Profiles on Ray ({self.workers} workers, {len(shards)} "
                                "shards)", total=n_users) as bar:
                try:
                    for b in ds.iter_batches(batch_size=None, batch_format="numpy"):
                        users += [str(u) for u in b["user_id"]]
                        vecs.append(np.asarray(b["vector"], dtype=np.float32))
                        bar.advance(len(b["user_id"]))
                except Exception as e:
                    if "is not visible on node" in str(e):
                        raise EngineError(
                            f"A Ray worker could not read the shard files under {root}: on a "
                            "cluster, pass --shard-dir on storage every node mounts.") from None
                    raise
        finally:
            shutil.rmtree(root, ignore_errors=True)
        order = np.argsort(np.asarray(users, dtype=object), kind="stable")  # as one process
        S = np.concatenate(vecs) if vecs else np.zeros((0, int(config["params"].get("d", 64))),
                                                      np.float32)
        return [users[i] for i in order], S[order]

    def assign(self, model, X, Q) -> np.ndarray:
        import ray

        n = Q.shape[0] if model.refine else len(X)
        if n == 0:
            return model.assign(X, Q)
        bounds = np.linspace(0, n, min(n, self.workers) + 1).astype(np.int64)
        ref = ray.put(model)
        task = _assign_task()
        futures = [task.remote(ref, None if model.refine else X[a:b],
                               Q[a:b] if model.refine else None)
                   for a, b in zip(bounds[:-1], bounds[1:])]
        return np.concatenate(ray.get(futures)).astype(np.int64)

    def share(self, obj):
        """``obj`` put in Ray's object store once (``map_chunks`` takes the reference)."""
        import ray

        return ray.put(obj)

    def map_chunks(self, fn, shared, chunks: list, stage=None) -> list:
        """One Ray task per chunk (one CPU each), ``shared`` put in the object store once (or
        already put by ``share``); results come back in the chunks' order, the stage advancing
        as each finishes."""
        import ray

        if not chunks:
            return []
        ref = shared if isinstance(shared, ray.ObjectRef) else ray.put(shared)
        task = ray.remote(num_cpus=1)(fn)
        futures = [task.remote(ref, chunk) for chunk in chunks]
        where = {f: i for i, f in enumerate(futures)}
        out: list = [None] * len(chunks)
        pending = list(futures)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            i = where[done[0]]
            out[i] = ray.get(done[0])
            if stage is not None:
                stage.advance(len(chunks[i]))
        return out

    def fit_encoder(self, job, progress: Progress = NULL):
        from core.engine.ray_train import fit_on_ray

        return fit_on_ray(job, workers=self.workers, use_gpu=bool(self._gpus(job.device)),
                          storage=self.shard_dir, progress=progress)
