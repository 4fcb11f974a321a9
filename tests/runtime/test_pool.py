"""The worker pool behind TensorRT's concurrency (edgefer.runtime.pool), proved with real threads on CPU:
close() waits for calls in flight, frees each worker once, refuses later calls, and the pool stays bounded."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from edgefer.errors import BackendClosed
from edgefer.runtime.pool import PoolClosed, WorkerPool


class Worker:
    """Stands for a TensorRT worker: records whether it was freed and refuses use after free."""

    made = 0

    def __init__(self):
        Worker.made += 1
        self.freed = 0

    def use(self) -> None:
        assert not self.freed, "a freed worker was used"

    def free(self) -> None:
        self.freed += 1


def wait_until(condition, limit: float = 10.0) -> None:
    """Poll for a state another thread reaches (a liveness guard, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "the other thread never got there"
        time.sleep(0.001)


def test_close_waits_for_the_call_in_flight_then_hands_over_its_worker():
    pool = WorkerPool(Worker, limit=2)
    worker = pool.borrow()
    release, closed = threading.Event(), []
    closer = threading.Thread(target=lambda: closed.append(pool.close()))
    closer.start()
    wait_until(lambda: pool.closed)
    assert closer.is_alive() and not closed  # still waiting: the worker is in use
    worker.use()
    release.set()
    pool.give_back(worker)
    closer.join()
    assert closed == [[worker]] and pool.in_flight == 0 and pool.size == 0


def test_no_call_starts_after_close():
    pool = WorkerPool(Worker, limit=1)
    pool.add(Worker())
    assert len(pool.close()) == 1
    with pytest.raises(PoolClosed, match="closed") as err:
        pool.borrow()
    assert isinstance(err.value, BackendClosed)  # the one closed-backend error
    with pytest.raises(PoolClosed):
        pool.add(Worker())


def test_two_concurrent_closes_free_each_worker_once():
    pool = WorkerPool(Worker, limit=4)
    workers = [pool.borrow() for _ in range(4)]
    for worker in workers:
        pool.give_back(worker)
    barrier = threading.Barrier(2)

    def close():
        barrier.wait()
        handed = pool.close()
        for worker in handed or []:
            worker.free()
        return handed

    with ThreadPoolExecutor(2) as executor:
        results = list(executor.map(lambda _: close(), range(2)))
    assert sorted(r is None for r in results) == [False, True]
    assert [w.freed for w in workers] == [1, 1, 1, 1]


def test_many_threads_share_a_bounded_pool_and_close_frees_all_after_them():
    pool = WorkerPool(Worker, limit=3)
    busy, peak, lock = [0], [0], threading.Lock()

    def call(_):
        worker = pool.borrow()
        with lock:
            busy[0] += 1
            peak[0] = max(peak[0], busy[0])
        worker.use()
        time.sleep(0.001)  # hold it, as a GPU call releases the GIL
        with lock:
            busy[0] -= 1
        pool.give_back(worker)

    with ThreadPoolExecutor(12) as executor:
        list(executor.map(call, range(200)))
    made = pool.size
    assert 1 <= made <= 3 and peak[0] <= 3
    handed = pool.close()
    assert len(handed) == made and len({id(w) for w in handed}) == made


def test_close_during_many_calls_never_frees_a_worker_in_use():
    """Threads keep calling while another closes: every call either finishes on a live worker or is refused."""
    pool = WorkerPool(Worker, limit=4)
    refused, done = [0], [0]
    lock = threading.Lock()
    started = threading.Event()

    def caller():
        while True:
            try:
                worker = pool.borrow()
            except PoolClosed:
                with lock:
                    refused[0] += 1
                return
            started.set()
            worker.use()
            time.sleep(0.0005)
            worker.use()  # still live: close() has not freed it under us
            pool.give_back(worker)
            with lock:
                done[0] += 1

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    started.wait()
    handed = pool.close()
    for worker in handed:
        worker.free()
    for thread in threads:
        thread.join()
    assert refused[0] == 8 and done[0] >= 1 and pool.in_flight == 0
    assert all(w.freed == 1 for w in handed)


def test_a_waiting_borrower_is_refused_when_the_pool_closes():
    pool = WorkerPool(Worker, limit=1)
    held = pool.borrow()
    outcome = []

    def wait_for_worker():
        try:
            pool.borrow()
        except PoolClosed as err:
            outcome.append(err)

    waiter = threading.Thread(target=wait_for_worker)
    waiter.start()
    closer = threading.Thread(target=pool.close)
    closer.start()
    waiter.join()
    assert len(outcome) == 1
    pool.give_back(held)
    closer.join()


def test_a_broken_worker_is_discarded_and_replaced():
    pool = WorkerPool(Worker, limit=1)
    broken = pool.borrow()
    pool.discard(broken).free()
    assert pool.size == 0 and pool.in_flight == 0
    fresh = pool.borrow()
    assert fresh is not broken and not fresh.freed
    pool.give_back(fresh)
    assert pool.close() == [fresh]


def test_limit_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        WorkerPool(Worker, limit=0)
