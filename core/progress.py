"""Progress reporting that works in the CLI (tqdm bars) and the dashboard (st.progress) alike.

Core functions take an optional ``progress: Progress`` and report stages:

    with progress.stage("Embedding items", total=n_items) as bar:
        ...
        bar.advance(batch_size)

The dashboard passes its own ``Progress`` subclass; core never imports streamlit.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator


class Stage:
    def __init__(self, name: str, total: int | None):
        self.name, self.total, self.done = name, total, 0

    def advance(self, n: int = 1) -> None:
        self.done += n

    def set_total(self, total: int) -> None:
        self.total = total


class Progress:
    """No-op base: records stages, shows nothing."""

    def __init__(self) -> None:
        self.stages: list[str] = []

    @contextlib.contextmanager
    def stage(self, name: str, total: int | None = None) -> Iterator[Stage]:
        self.stages.append(name)
        st = self._open(name, total)
        try:
            yield st
        finally:
            self._close(st)

    def _open(self, name: str, total: int | None) -> Stage:
        return Stage(name, total)

    def _close(self, stage: Stage) -> None:
        pass

    def message(self, text: str) -> None:
        pass


class _TqdmStage(Stage):
    def __init__(self, name: str, total: int | None, bar):
        super().__init__(name, total)
        self.bar = bar

    def advance(self, n: int = 1) -> None:
        super().advance(n)
        self.bar.update(n)

    def set_total(self, total: int) -> None:
        super().set_total(total)
        self.bar.total = total
        self.bar.refresh()


class TqdmProgress(Progress):
    """Progress bars on stderr for the command line (hidden with --quiet/--json)."""

    def __init__(self, enabled: bool = True) -> None:
        super().__init__()
        self.enabled = enabled

    def _open(self, name, total):
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=name, disable=not self.enabled, file=sys.stderr,
                   dynamic_ncols=True, leave=True)
        return _TqdmStage(name, total, bar)

    def _close(self, stage):
        stage.bar.close()

    def message(self, text: str) -> None:
        if self.enabled:
            print(text, file=sys.stderr)


NULL = Progress()
