"""Where a sweep's runs execute: local worker processes (the default), or a Dask cluster
(`dask.distributed`, the `dask` extra): an existing one at its scheduler's address, or a
LocalCluster on this machine. Each yields every task's result as it completes, or the
exception that kept the task from returning one."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from kpkt.errors import KpktError

CONNECT_TIMEOUT = "20s"
Results = Iterator[tuple[int, Any]]  # (the task's position, its result or exception)


def cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _ignore_interrupts() -> None:
    """In a worker process: Ctrl-C and SIGTERM are for the sweep to handle (a worker finishes
    its run)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class LocalExecutor:
    """`jobs` worker processes on this machine, each running one run after another."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs

    def run(self, function: Callable, tasks: list) -> Results:
        if not tasks:
            return
        workers = min(self.jobs, len(tasks))
        pool = ProcessPoolExecutor(max_workers=workers, initializer=_ignore_interrupts)
        try:
            futures = {pool.submit(function, task): index for index, task in enumerate(tasks)}
            for future in as_completed(futures):
                error = future.exception()
                yield futures[future], error if error is not None else future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """The runs as Dask tasks: on the cluster whose scheduler is at `address`
    (tcp://host:8786), or with `address` "local" on a LocalCluster of `jobs` single-threaded
    worker processes."""

    def __init__(self, address: str, jobs: int) -> None:
        try:
            import distributed
        except ImportError:
            raise KpktError(
                "--dask needs dask.distributed, which is not installed: "
                "pip install 'kpkt[dask]' (or 'dask[distributed]')"
            ) from None
        self.distributed = distributed
        self.address = address
        self.jobs = jobs

    def run(self, function: Callable, tasks: list) -> Results:
        if not tasks:
            return
        if self.address == "local":
            cluster = self.distributed.LocalCluster(
                n_workers=self.jobs,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            client = self.distributed.Client(cluster)
        else:
            cluster = None
            client = self._connect()
        try:
            futures = client.map(function, tasks, pure=False)
            index = {future.key: position for position, future in enumerate(futures)}
            for future in self.distributed.as_completed(futures):
                position = index[future.key]
                if future.status == "error":
                    yield position, future.exception()
                else:
                    yield position, future.result()
                future.release()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()

    def _connect(self):
        try:
            return self.distributed.Client(self.address, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as error:
            raise KpktError(
                f"--dask {self.address}: cannot reach a Dask scheduler there ({error}); start "
                "one with `dask scheduler` and give its tcp://HOST:8786, or use --dask local"
            ) from None
