"""Simulations in worker processes, each fed over its own pipe.

``multiprocessing.Pool`` shares one task queue between its workers, guarded
by a lock that an idle worker holds while it waits; ending the pool early
(an error in one run, Ctrl-C) must then coax every worker off that lock, and
on a loaded machine ``Pool.terminate()`` was seen to hang there. Here each
worker has its own pipe and nothing is shared: the parent hands a worker
its next task when it returns a result, and ending early is a kill and a
join of processes that hold nothing the parent waits for.

A worker keeps the request streams of the seeds it has run
(:func:`~.engine.simulate_sharing`); tasks go out in the order given.
"""

from __future__ import annotations

import multiprocessing
import pickle
import signal
from collections import deque
from collections.abc import Iterator
from multiprocessing.connection import Connection, wait

from ..strategies.registry import Strategy
from .engine import Streams, simulate_sharing
from .results import SimulationResult
from .scenario import Scenario

__all__ = ["Task", "run_in_processes"]

Task = tuple[Scenario, Strategy]

_STOP_WAIT = 5.0
"""Seconds a worker told to stop may take to exit before it is killed."""


class _Failure:
    """A run's exception, sent back to the parent to be raised there."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def run_in_processes(tasks: list[Task], jobs: int) -> Iterator[tuple[int, SimulationResult]]:
    """``(index, result)`` for every task, in the order they end, from ``jobs`` processes.

    The first run that raises ends the others (their processes are killed)
    and its exception is raised here; so does closing the iterator early.
    O(len(tasks)) messages; no worker outlives the call.

    Raises:
        RuntimeError: a worker process died without an answer.
        Exception: the first exception a run raised.
    """
    pending = deque(range(len(tasks)))
    workers: list[tuple[multiprocessing.Process, Connection]] = []
    busy: dict[Connection, int] = {}
    finished = False
    try:
        for _ in range(min(jobs, len(tasks))):
            mine, theirs = multiprocessing.Pipe()
            process = multiprocessing.Process(target=_serve, args=(theirs,), daemon=True)
            process.start()
            theirs.close()  # the child's end: EOF here when the child dies
            workers.append((process, mine))
            index = pending.popleft()
            mine.send((index, tasks[index]))
            busy[mine] = index
        while busy:
            for ready in wait(list(busy)):
                assert isinstance(ready, Connection)
                index = busy.pop(ready)
                try:
                    reply = ready.recv()
                except EOFError:
                    raise RuntimeError(
                        f"a simulation worker died while running task {index}"
                    ) from None
                if isinstance(reply, _Failure):
                    raise reply.error
                yield index, reply
                if pending:
                    index = pending.popleft()
                    ready.send((index, tasks[index]))
                    busy[ready] = index
        for _, connection in workers:
            connection.send(None)  # done: the worker returns
        finished = True
    finally:
        for process, connection in workers:
            if not finished:  # ended early: no run of theirs is worth waiting for
                process.kill()
            process.join(_STOP_WAIT)
            if process.is_alive():
                process.kill()
                process.join()
            connection.close()


def _serve(connection: Connection) -> None:
    """A worker: run each task it is sent until told to stop (``None``)."""
    # Ctrl-C reaches the whole process group: the parent handles it and ends the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    streams: Streams = {}
    while True:
        item = connection.recv()
        if item is None:
            return
        _, (scenario, strategy) = item
        try:
            result: SimulationResult | _Failure = simulate_sharing(scenario, strategy, streams)
        except Exception as error:
            result = _Failure(_portable(error))
        connection.send(result)


def _portable(error: Exception) -> Exception:
    """``error`` if it survives the trip to the parent (pickled there and back), else a
    ``RuntimeError`` carrying its type and text, so the real reason is never lost."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error
