"""Background workers: separate Python processes that run one stage's heavy step while the build
process goes on with other stages (the map's layout, the predictions, the offline evaluation).

On a small machine most of the build runs on one thread (the encoder's small ops and the
segments' checks gain nothing from a second thread on a busy box), so the second core would sit
idle; a worker process gives it work. Each worker is a plain subprocess
(``python -m core.engine.background``) spoken to over its stdin and stdout with pickled requests
``(target, args, kwargs)`` -- ``target`` is ``"package.module:function"`` -- and replies
``("ok", result)`` or ``("error", message)``, one at a time. Unlike a multiprocessing pool it
never imports the caller's script (a script without an ``if __name__ == "__main__"`` guard would
otherwise run again in the worker and, here, wait on the store the build holds), it never opens
the build's store (inputs travel over the pipe or as a snapshot file of the store, results come
back over the pipe, and the build writes them), and it ends by itself when
its stdin closes: when the build process exits or dies. A worker lives as long as that process,
so what it compiles or imports once (UMAP's numba code, torch) is paid once.

``worker(name)`` returns the named worker (started on first use, restarted if it died), or None
where there is no second core or ``SEGSTUDIO_IN_PROCESS=1`` asks for everything in one process;
callers then run the step themselves, as they do when a worker fails. A worker starts no workers
of its own (its environment says `SEGSTUDIO_IN_PROCESS=1`): its steps run in it.
"""

from __future__ import annotations

import atexit
import importlib
import os
import pickle
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path

IN_PROCESS_ENV = ("SEGSTUDIO_IN_PROCESS", "SEGSTUDIO_MAP_IN_PROCESS")


class Worker:
    """One worker process; ``submit("pkg.mod:fn", *args, **kwargs)`` returns a Future."""

    def __init__(self, name: str = "worker"):
        self.name = name
        root = str(Path(__file__).resolve().parents[2])  # the folder holding core/
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        env["SEGSTUDIO_IN_PROCESS"] = "1"  # a worker's own steps run in it: no workers of its own
        self.proc = subprocess.Popen([sys.executable, "-m", "core.engine.background"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env, cwd=root)
        self._lock = threading.Lock()
        self.pending = 0  # jobs submitted and not answered yet
        atexit.register(self.close)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def submit(self, target: str, *args, **kwargs) -> Future:
        return self._send(target, args, kwargs, counted=True)

    def preload(self, modules: tuple[str, ...], then: str | None = None) -> Future:
        """Import ``modules`` in the worker (and call ``then``, "package.module:function", with
        no arguments), so a job submitted later finds them loaded. Not counted by ``busy``: it
        holds no data, and a build's thread and memory shares should not shrink for it."""
        return self._send("core.engine.background:import_modules", (tuple(modules), then), {},
                          counted=False)

    def _send(self, target: str, args: tuple, kwargs: dict, counted: bool) -> Future:
        fut: Future = Future()
        if counted:
            self.pending += 1

        def roundtrip():
            with self._lock:
                try:
                    pickle.dump((target, args, kwargs), self.proc.stdin,
                                protocol=pickle.HIGHEST_PROTOCOL)
                    self.proc.stdin.flush()
                    status, value = pickle.load(self.proc.stdout)
                except Exception as e:  # the worker died (memory?) or its pipe broke
                    fut.set_exception(RuntimeError(f"the {self.name} worker stopped "
                                                   f"({type(e).__name__})"))
                    return
                finally:
                    if counted:
                        self.pending -= 1
            if status == "ok":
                fut.set_result(value)
            else:
                fut.set_exception(RuntimeError(value))

        threading.Thread(target=roundtrip, name=f"{self.name}-worker", daemon=True).start()
        return fut

    def close(self) -> None:
        try:
            if self.proc.stdin and not self.proc.stdin.closed:
                self.proc.stdin.close()
            self.proc.wait(5)
        except Exception:
            self.proc.kill()


_WORKERS: dict[str, Worker] = {}
_LOCK = threading.Lock()


def enabled() -> bool:
    """Whether steps may run in background workers: 2+ cores and not switched off."""
    return (os.cpu_count() or 1) >= 2 and not any(os.environ.get(v) == "1" for v in IN_PROCESS_ENV)


def worker(name: str) -> Worker | None:
    """The live worker called ``name`` (started now if needed), or None (see ``enabled``)."""
    if not enabled():
        return None
    with _LOCK:
        w = _WORKERS.get(name)
        if w is None or not w.alive():
            w = _WORKERS[name] = Worker(name)
        return w


def discard(name: str) -> None:
    """Close and forget the worker called ``name`` (after it failed); the next use restarts it."""
    with _LOCK:
        w = _WORKERS.pop(name, None)
    if w is not None:
        w.close()


def collect(future, name: str, progress, what: str):
    """Wait for a job the worker ``name`` was given, under a progress line "Finishing <what>".
    Returns (its result, "background worker"), or (None, "build process (background worker
    failed: <error>)") when the worker died or failed, after forgetting it: the caller then
    runs the step itself, on the same data, to the same result."""
    try:
        with progress.stage(f"Finishing {what}", total=1) as bar:
            out = future.result()
            bar.advance(1)
        return out, "background worker"
    except Exception as e:
        discard(name)
        return None, f"build process (background worker failed: {type(e).__name__})"


def busy() -> int:
    """How many background jobs are running now (submitted, not yet answered)."""
    return sum(w.pending for w in list(_WORKERS.values()) if w.alive())


def inference_threads(n_rows: int) -> int | None:
    """CPU threads for a model's forward pass over ``n_rows`` shoppers: every core (up to 8) for
    a large pass (100,000+ shoppers) while no background job runs (measured on 2 idle cores,
    the encoder's forward pass: 4,017 -> 8,812 shoppers/s); otherwise None, the default (half
    the cores, leaving the other half to the workers)."""
    if n_rows < 100_000 or busy():
        return None
    return max(1, min(8, os.cpu_count() or 1))


def peak_memory() -> dict[str, float]:
    """Each live worker's peak resident memory in GB (Linux; empty elsewhere), for benchmarks."""
    out = {}
    for name, w in list(_WORKERS.items()):
        try:
            with open(f"/proc/{w.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        out[name] = int(line.split()[1]) / 2**20
        except OSError:
            continue
    return out


def prewarm(jobs: list[tuple[str, tuple[str, ...], str | None]],
            _done: Future | None = None) -> Future | None:
    """Start the workers named in ``jobs`` (``(name, modules, then)``), one after another, and
    have each import its ``modules`` (then call ``then``) while the build is busy with a step
    that leaves the second core idle, so their first real jobs do not pay for that later on a
    busy machine. One at a time: processes importing beside a step that uses both cores slow
    it down more than they gain. Returns a Future that resolves, once the last one is done, to
    the names warmed (one that failed is left out: its job imports what it needs as ever), or
    None where there are no workers (see ``enabled``)."""
    if not enabled():
        return None
    done = _done if _done is not None else Future()
    if _done is None:
        done.warmed = []
    if not jobs:
        done.set_result(done.warmed)
        return done
    (name, modules, then), rest = jobs[0], jobs[1:]

    def next_one(f: Future) -> None:
        if f.exception() is None:
            done.warmed.append(name)
        prewarm(rest, done)

    w = worker(name)
    w.preload(modules, then).add_done_callback(next_one)
    return done


def import_modules(modules: tuple[str, ...], then: str | None = None) -> int:
    """Runs in the worker (``Worker.preload``): import each module, call ``then``; returns how
    many modules were new here."""
    new = sum(m not in sys.modules for m in modules)
    for m in modules:
        importlib.import_module(m)
    if then:
        run_target(then, (), {})
    return new


def run_target(target: str, args: tuple, kwargs: dict):
    mod, _, fn = target.partition(":")
    return getattr(importlib.import_module(mod), fn)(*args, **kwargs)


def serve() -> None:
    """The worker's loop: read a request, run it, reply; stop at the end of stdin."""
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but replies on the reply pipe
    while True:
        try:
            target, args, kwargs = pickle.load(inp)
        except EOFError:
            return
        try:
            reply = ("ok", run_target(target, args, kwargs))
        except Exception as e:  # reported to the build, which runs the step itself
            reply = ("error", f"{type(e).__name__}: {e}")
        pickle.dump(reply, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()


if __name__ == "__main__":
    serve()
