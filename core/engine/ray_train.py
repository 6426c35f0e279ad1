"""The profile encoder's training on Ray Train: a ``TorchTrainer`` running ``core.encoder.loop.fit``
on every worker as one rank of a DDP group (gloo on CPUs, NCCL with ``use_gpu``).

Every rank gets the whole prepared job from the object store and trains on its share of each
global batch (see ``core.encoder.loop``); rank 0 saves the best epoch's weights and the curve as
the run's checkpoint, which the driver reads back and the build stores as usual; it also bumps
a small counter actor after every epoch, which moves the driver's progress bar. Ray Train
keeps checkpoints under ``storage`` (a folder every node mounts on a cluster; by default a
temporary folder on this machine), removed afterwards.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import uuid
from pathlib import Path

from core.progress import NULL, Progress

WEIGHTS = "weights.safetensors"
META = "fit.json"


def _epoch_counter():
    """A tiny actor rank 0 bumps after every epoch, so the driver's progress bar moves."""
    import ray

    @ray.remote(num_cpus=0)
    class EpochCounter:
        def __init__(self):
            self.n = 0

        def add(self) -> None:
            self.n += 1

        def get(self) -> int:
            return self.n

    return EpochCounter.remote()


def _train_loop(config: dict) -> None:
    """One Ray Train worker (runs in its own process)."""
    import ray
    import ray.train
    import ray.train.torch as rtt
    from safetensors.torch import save_file

    from core.encoder.loop import fit

    job = ray.get(config["job"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = str(rtt.get_device()) if config["use_gpu"] else "cpu"
    counter = config["epochs"] if rank == 0 else None
    fitted = fit(job, rank=rank, world=world, device=device, threads=config["threads"],
                 wrap=lambda m: rtt.prepare_model(m) if world > 1 else m,
                 on_epoch=(lambda row: counter.add.remote()) if counter is not None else None)
    meta = {"curve": fitted.curve, "best_epoch": fitted.best_epoch,
            "train_seconds": fitted.train_seconds, "workers": world}
    if rank == 0:
        with tempfile.TemporaryDirectory() as d:
            save_file({k: v.contiguous() for k, v in fitted.state.items()}, str(Path(d, WEIGHTS)))
            Path(d, META).write_text(json.dumps(meta))
            ray.train.report({"best_epoch": fitted.best_epoch},
                             checkpoint=ray.train.Checkpoint.from_directory(d))
    else:
        ray.train.report({"best_epoch": fitted.best_epoch})


def fit_on_ray(job, *, workers: int, use_gpu: bool = False, storage: str | None = None,
               threads: int = 1, progress: Progress = NULL):
    """Train ``job`` with ``workers`` DDP ranks (at most the batch size); returns a
    ``core.engine.FitResult``."""
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from safetensors.torch import load_file

    from core.engine import FitResult

    # each step's batch (batch_size windows, as in one process) is split across the ranks, so
    # more ranks than windows per step would leave some idle: train on at most batch_size
    workers = max(1, min(int(workers), int(job.params["batch_size"])))
    root = Path(tempfile.mkdtemp(prefix="segstudio-train-", dir=storage))
    counter = _epoch_counter()
    try:
        trainer = TorchTrainer(
            _train_loop,
            train_loop_config={"job": ray.put(job), "use_gpu": use_gpu, "threads": threads,
                               "epochs": counter},
            scaling_config=ScalingConfig(
                num_workers=int(workers), use_gpu=use_gpu,
                resources_per_worker={"CPU": 1, **({"GPU": 1} if use_gpu else {})}),
            run_config=RunConfig(storage_path=str(root), name=f"encoder-{uuid.uuid4().hex[:8]}"),
        )
        out: dict = {}

        def run() -> None:
            try:
                out["result"] = trainer.fit()
            except BaseException as e:  # noqa: BLE001 - re-raised in the calling thread
                out["error"] = e

        with progress.stage(f"Training profile encoder on Ray ({workers} DDP workers)",
                            total=int(job.max_epochs)) as bar:
            thread = threading.Thread(target=run, daemon=True)
            thread.start()
            seen = 0
            while thread.is_alive():
                thread.join(timeout=1.0)
                done = ray.get(counter.get.remote())
                bar.advance(done - seen)
                seen = done
        if "error" in out:
            raise out["error"]
        result = out["result"]
        if result.checkpoint is None:
            raise RuntimeError(f"Ray Train finished without the encoder's checkpoint "
                               f"({result.error or 'no error reported'}).")
        with result.checkpoint.as_directory() as d:
            state = load_file(str(Path(d, WEIGHTS)))
            meta = json.loads(Path(d, META).read_text())
    finally:
        ray.kill(counter)
        shutil.rmtree(root, ignore_errors=True)
    return FitResult(state=state, curve=meta["curve"], best_epoch=int(meta["best_epoch"]),
                     train_seconds=float(meta["train_seconds"]), workers=int(meta["workers"]))
