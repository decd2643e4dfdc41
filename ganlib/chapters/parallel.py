"""Independent, self-seeding runs in parallel processes, for the results commands and the
chapters' small grids.

Each job is one call ``fn(job)``. Every run the book parallelises seeds itself from its job, so the
results are the same with any number of workers; only the wall time changes.
"""
from __future__ import annotations

import functools
import multiprocessing
from collections.abc import Callable, Iterable, Iterator

import torch


def _call_with_threads(fn: Callable, threads: int, job):
    torch.set_num_threads(threads)  # a spawned process starts with torch's default thread count
    return fn(job)


def map_jobs(fn: Callable, jobs: Iterable, workers: int = 1, threads: int | None = None) -> Iterator:
    """``fn(job)`` for each job, in order, yielded as each finishes.

    ``workers > 1`` runs them in that many spawned processes (spawn, not fork: safe in notebooks and
    with CUDA), each with ``threads`` torch threads (default: this process's count). ``fn`` must be a
    module-level function and jobs picklable.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1; got {workers}")
    jobs = list(jobs)
    if workers == 1 or len(jobs) <= 1:
        yield from map(fn, jobs)
        return
    run = functools.partial(_call_with_threads, fn, threads or torch.get_num_threads())
    with multiprocessing.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
        yield from pool.imap(run, jobs)
        pool.close()  # a clean exit: the workers finish instead of being terminated mid-way
        pool.join()
