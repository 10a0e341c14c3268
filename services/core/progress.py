"""Progress of long work: a live bar on a terminal; on a pipe or a file (CI, `make demo > log`) one line
when a stage starts and one when it ends, instead of the hundreds of carriage-return frames a bar leaves
in a log."""

from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def on_terminal(stream=None) -> bool:
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def quiet_library_bars() -> None:
    """transformers' and huggingface_hub's own bars (loading weights, de-quantising): silenced off a
    terminal, where they are only carriage-return frames."""
    if on_terminal():
        return
    import os

    os.environ.setdefault("TQDM_DISABLE", "1")  # tqdm's own switch: bars created straight from tqdm too
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass


class LineProgress:
    """tqdm's small surface (iterate, `set_postfix`, `update`, `close`), printed as a start line and an end
    line with the count, the time and the last postfix."""

    def __init__(self, iterable: Iterable[T] | None, description: str, unit: str, total: int | None,
                 stream) -> None:
        self.iterable = iterable
        self.description = description
        self.unit = unit
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.stream = stream
        self.count = 0
        self.postfix: dict[str, object] = {}
        self.started = time.monotonic()
        self.closed = False
        of = f" ({self.total} {unit}s)" if self.total is not None else ""
        print(f"{description}: started{of}", file=stream, flush=True)

    def __iter__(self) -> Iterator[T]:
        try:
            for item in self.iterable:
                yield item
                self.count += 1
        finally:
            self.close()

    def update(self, n: int = 1) -> None:
        self.count += n

    def set_postfix(self, refresh: bool = False, **values) -> None:
        self.postfix = values

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        extra = "".join(f", {k} {v}" for k, v in self.postfix.items())
        print(f"{self.description}: done, {self.count} {self.unit}s in {time.monotonic() - self.started:.1f}s{extra}",
              file=self.stream, flush=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Silent:
    def __init__(self, iterable):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, refresh: bool = False, **values) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def progress_bar(iterable: Iterable[T] | None = None, *, description: str, unit: str = "it",
                 total: int | None = None, enabled: bool = True, stream=None):
    """A tqdm bar on a terminal, LineProgress elsewhere, nothing when not `enabled`."""
    stream = stream or sys.stderr
    if not enabled:
        return _Silent(iterable if iterable is not None else ())
    if on_terminal(stream):
        from tqdm import tqdm

        return tqdm(iterable, desc=description, unit=unit, total=total, mininterval=1.0, file=stream)
    return LineProgress(iterable, description, unit, total, stream)
