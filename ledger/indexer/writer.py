"""A one-page-deep write pipeline: the next page is decoded while the previous one is written.

The indexer's time splits between Python work on a page (parsing, mapping, type checks) and the database
writing it; sqlite3 and psycopg release the GIL while the database works, so on two cores the two overlap.
Pages are still written strictly in order, each in its own transaction, by one thread; an error in a write
is raised in the submitting thread at its next ``submit`` or when the ``with`` block ends, and no later page
is written after it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

_STOP = object()


class PageWriter:
    """Runs ``write(item)`` for each submitted item, in order, in one background thread, ``depth`` items behind."""

    def __init__(self, write: Callable[[Any], None], depth: int = 1) -> None:
        self._write = write
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="adledger-page-writer", daemon=True)

    def __enter__(self) -> PageWriter:
        self._thread.start()
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._queue.put(_STOP)
        self._thread.join()
        if self._error is not None and exc_type is None:
            raise self._error

    def submit(self, item: Any) -> None:
        """Queues ``item`` (waiting while the writer is ``depth`` behind); raises a failed write's error."""
        self._raise_failure()
        self._queue.put(item)

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._error is not None:
                continue  # drain: nothing is written after a failed page
            try:
                self._write(item)
            except BaseException as exc:  # handed to the submitting thread
                self._error = exc
