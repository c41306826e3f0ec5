"""One background thread with ``start()`` / ``stop()``: what the thread runners share.

Each run gets its own stop event. ``stop()`` sets the event of the run it
stops and forgets that thread, whether or not it waited for it to end; a
``start()`` right after makes a new thread with a new event. A thread still
busy with a round when it is stopped (a probe, a DNS lookup) therefore sees
*its own* event set at its next check and exits: two runs never both loop.
(One shared event cleared by ``start()`` let a thread stopped with a short
``timeout`` miss its stop and run on beside the new one.)

>>> import threading
>>> rounds = []
>>> def body(stop: threading.Event) -> None:
...     while not stop.is_set():
...         rounds.append(1)
...         stop.wait(0.01)
>>> loop = ThreadLoop("Demo", "demo", body)
>>> loop.start(); loop.running
True
>>> loop.stop(timeout=1.0); loop.running, len(rounds) >= 1
(False, True)

Complexity: ``start`` and ``stop`` O(1) (``stop`` waits up to ``timeout``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..validate import MAX_SECONDS, show

__all__ = ["ThreadLoop", "check_timeout"]


def check_timeout(timeout: object) -> float | None:
    """``timeout`` for a ``stop()``: ``None`` (wait as long as it takes) or seconds in
    [0, 1e9] (a longer wait overflows the thread's join).

    >>> check_timeout(-1)
    Traceback (most recent call last):
    ...
    ValueError: timeout must be None or a finite number in [0, 1e+09], got -1

    Raises:
        TypeError, ValueError: anything else, naming the value.
    """
    if timeout is None:
        return None
    message = f"timeout must be None or a finite number in [0, {MAX_SECONDS:g}], got "
    message += show(timeout)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(message)
    if not 0 <= timeout <= MAX_SECONDS:  # NaN fails too; a huge int compares exactly
        raise ValueError(message)
    return float(timeout)


class ThreadLoop:
    """Runs ``body(stop)`` in a daemon thread named ``name``, one run at a time.

    ``body`` loops until ``stop`` (an event of its own run) is set, and must
    check it between rounds. ``owner`` names the runner in errors.
    """

    __slots__ = ("_body", "_lock", "_name", "_owner", "_stop", "_thread")

    def __init__(self, owner: str, name: str, body: Callable[[threading.Event], None]) -> None:
        self._owner = owner
        self._name = name
        self._body = body
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def running(self) -> bool:
        """Whether a run is started and not stopped."""
        return self._thread is not None

    def start(self) -> None:
        """Start a run in a new thread, with a new stop event.

        Raises:
            RuntimeError: a run is going on.
        """
        with self._lock:
            if self._thread is not None:
                raise RuntimeError(f"{self._owner} is already running")
            stop = threading.Event()
            thread = threading.Thread(target=self._body, args=(stop,), name=self._name, daemon=True)
            thread.start()
            self._thread, self._stop = thread, stop

    def stop(self, timeout: float | None = None) -> None:
        """Stop the run and wait up to ``timeout`` seconds for its thread; no error if stopped.

        Called from the run's own thread (a callback of the body) it does not wait.

        Raises:
            TypeError, ValueError: a bad ``timeout`` (then nothing is stopped).
        """
        seconds = check_timeout(timeout)
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(seconds)

    def unless_running(self, action: Callable[[], object]) -> None:
        """Call ``action()`` unless a run is going on, with no ``start()`` meanwhile.

        The end of a stopped run uses it to release what the runs share (a
        probe's connections), which a run started since must keep.
        """
        with self._lock:
            if self._thread is None:
                action()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"ThreadLoop({self._owner!r}, {self._name!r}, {state})"
