"""The background map worker: a separate Python process (``python -m core.maps.worker``) that
lays maps out (``embed_2d``) while the build process goes on with other stages.

It is a plain subprocess spoken to over its stdin and stdout with pickled requests
``(X, settings)`` and replies ``("ok", (coords, info))`` or ``("error", message)``, one at a time.
Unlike a multiprocessing pool it never imports the caller's script (a script without an
``if __name__ == "__main__"`` guard would otherwise run again in the worker and, here, wait on
the store the build holds), and it ends by itself when its stdin closes: when the build process
exits or dies. It lives as long as that process, so UMAP is compiled once per process.
"""

from __future__ import annotations

import atexit
import os
import pickle
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path


class MapWorker:
    """One worker process; ``submit(X, **settings)`` returns a Future of ``(coords, info)``."""

    def __init__(self):
        root = str(Path(__file__).resolve().parents[2])  # the folder holding core/
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen([sys.executable, "-m", "core.maps.worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env, cwd=root)
        self._lock = threading.Lock()
        atexit.register(self.close)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def submit(self, X, **settings) -> Future:
        fut: Future = Future()

        def roundtrip():
            with self._lock:
                try:
                    pickle.dump((X, settings), self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                    self.proc.stdin.flush()
                    status, value = pickle.load(self.proc.stdout)
                except Exception as e:  # the worker died (memory?) or its pipe broke
                    fut.set_exception(RuntimeError(f"the map worker stopped ({type(e).__name__})"))
                    return
            if status == "ok":
                fut.set_result(value)
            else:
                fut.set_exception(RuntimeError(value))

        threading.Thread(target=roundtrip, name="map-worker", daemon=True).start()
        return fut

    def close(self) -> None:
        try:
            if self.proc.stdin and not self.proc.stdin.closed:
                self.proc.stdin.close()
            self.proc.wait(5)
        except Exception:
            self.proc.kill()


def serve() -> None:
    """The worker's loop: read a request, lay the map out, reply; stop at the end of stdin."""
    from core.maps.umap_map import embed_2d

    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but replies on the reply pipe
    while True:
        try:
            X, settings = pickle.load(inp)
        except EOFError:
            return
        try:
            reply = ("ok", embed_2d(X, **settings))
        except Exception as e:  # reported to the build, which lays the map out itself
            reply = ("error", f"{type(e).__name__}: {e}")
        pickle.dump(reply, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()


if __name__ == "__main__":
    serve()
