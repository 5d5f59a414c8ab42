"""Batch executors: run the worker on a local process pool or on Dask, yielding `Outcome`s in completion order."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

from .records import Job, Outcome
from .worker import analyze, attempts_on_disk, failure, init_local_worker


def local_outcomes(jobs: list[Job], workers: int, retries: int) -> Iterator[Outcome]:
    """Local worker processes (spawned), each loading the models once. A task that raises is resubmitted up to
    `retries` times; when a worker process dies, the pool is replaced and the recordings it held are resubmitted,
    each charged one attempt per death it was running at."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    first = jobs[0]
    ctx = mp.get_context("spawn")

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(min(workers, len(jobs)), mp_context=ctx, initializer=init_local_worker,
                                   initargs=(first.settings, first.threads, first.quiet_native_logs))

    errors: dict[str, int] = {}
    pool = new_pool()
    running = {pool.submit(analyze, job): job for job in jobs}
    try:
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            lost: list[Job] = []
            again: list[Job] = []
            for fut in finished:
                job = running.pop(fut)
                try:
                    yield fut.result()
                except BrokenProcessPool:
                    lost.append(job)
                except Exception as e:  # noqa: BLE001 - a transient failure: this path's retry (no engine here)
                    errors[job.name] = errors.get(job.name, 0) + 1
                    if errors[job.name] <= retries:
                        again.append(job)
                    else:
                        yield failure(job, e)
            if lost:  # a worker died: every future of the pool fails; start a new pool
                lost += list(running.values())
                running.clear()
                _stop_pool(pool)
                pool = new_pool()
                for job in lost:
                    n = attempts_on_disk(job)
                    if n > retries:
                        yield failure(job, f"{job.source}: the worker process analysing it died {n} time(s) (out "
                                            "of memory, or a crash in a native library?)", attempts=n)
                    else:
                        again.append(job)
            for job in again:
                running[pool.submit(analyze, job)] = job
    finally:
        _stop_pool(pool)


def _stop_pool(pool) -> None:
    """Cancel what is queued and end the worker processes now (they may be in the middle of a recording)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # the executor has no public terminate (3.11)
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=5)


def import_dask():
    """The `distributed` module, or MissingExtra (an ImportError) naming the dask extra."""
    from ..extras import require

    require("dask", "dask", "--dask-local/--scheduler")
    return require("distributed", "dask", "--dask-local/--scheduler")


def local_cluster(workers: int, retries: int):
    """A LocalCluster of `workers` single-threaded worker processes, every port on 127.0.0.1 (any free one)."""
    distributed = import_dask()
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": retries}):
        return distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                        scheduler_port=0, dashboard_address="127.0.0.1:0",
                                        silence_logs=logging.ERROR)


def dask_outcomes(client, jobs: list[Job], retries: int) -> Iterator[Outcome]:
    """Dask futures: `retries=` re-runs a task that raised, the scheduler re-runs the tasks of a worker that died
    (up to its `allowed-failures`, then KilledWorker). Largest files are given the highest priority."""
    distributed = import_dask()
    run = uuid.uuid4().hex[:8]
    futures = {
        client.submit(analyze, job, key=f"libreface-{job.name}-{run}", retries=retries, pure=False,
                      priority=len(jobs) - i): job
        for i, job in enumerate(jobs)
    }
    try:
        for fut in distributed.as_completed(futures):
            job = futures[fut]
            if fut.status == "finished":
                yield fut.result()
            elif fut.status == "cancelled":
                yield failure(job, f"{job.source}: cancelled by the Dask cluster")
            else:
                yield failure(job, fut.exception())
            fut.release()
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)
