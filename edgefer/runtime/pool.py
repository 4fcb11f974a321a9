"""A bounded pool of per-call workers that closes safely while other threads still use it.

A GPU backend gives each concurrent call its own worker (an execution context, a stream, buffers).
The runtimes release the GIL during a call, so ``close()`` from one thread must not free a worker
that another thread is using: borrowing counts the call as in flight, and closing waits for every
call in flight to return its worker before it hands the workers over to be freed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from edgefer.errors import BackendClosed

W = TypeVar("W")


class PoolClosed(BackendClosed):
    """The backend was closed: no new call may start (the house's one closed-backend error)."""


class WorkerPool(Generic[W]):
    """At most ``limit`` workers made by ``make``; a borrower waits when all of them are busy."""

    def __init__(self, make: Callable[[], W], limit: int, name: str = "backend"):
        if limit < 1:
            raise ValueError(f"a worker pool needs a limit of at least 1, not {limit}")
        self._make, self.limit, self.name = make, limit, name
        self._cond = threading.Condition()
        self._idle: list[W] = []
        self._made = 0
        self._in_flight = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def size(self) -> int:
        """Workers alive (idle or borrowed)."""
        return self._made

    def add(self, worker: W) -> None:
        """Put an already made worker in the pool (the backend makes its first one at load time)."""
        with self._cond:
            if self._closed:
                raise PoolClosed(f"{self.name}: closed")
            self._made += 1
            self._idle.append(worker)
            self._cond.notify()

    def borrow(self) -> W:
        """An idle worker, a new one while under the limit, else wait for one; PoolClosed once closed."""
        with self._cond:
            while True:
                if self._closed:
                    raise PoolClosed(f"{self.name}: the backend is closed")
                if self._idle:
                    worker = self._idle.pop()
                    break
                if self._made < self.limit:
                    worker = self._make()  # under the lock: close() cannot free what is being built on
                    self._made += 1
                    break
                self._cond.wait()
            self._in_flight += 1
            return worker

    def give_back(self, worker: W) -> None:
        """Return a borrowed worker whose work has finished (its stream synchronised)."""
        with self._cond:
            self._in_flight -= 1
            self._idle.append(worker)
            self._cond.notify_all()

    def discard(self, worker: W) -> W:
        """A borrowed worker that must not be reused (its stream failed): out of the pool, to be freed."""
        with self._cond:
            self._in_flight -= 1
            self._made -= 1
            self._cond.notify_all()
        return worker

    def close(self) -> list[W] | None:
        """Refuse new calls, wait for the calls in flight, and return every worker to free; None when
        another ``close()`` already did (so two concurrent closes never free twice)."""
        with self._cond:
            if self._closed:
                return None
            self._closed = True
            self._cond.notify_all()  # borrowers waiting for a worker now see the pool closed
            while self._in_flight:
                self._cond.wait()
            workers, self._idle, self._made = self._idle, [], 0
            return workers
