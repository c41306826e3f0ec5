"""Scenario: what the simulator runs, validated, and a built-in one.

A :class:`Scenario` is a frozen description of a workload and of the servers
that take it: the servers (concurrency ``capacity``, ``speed`` and
``weight``), how requests arrive (Poisson at ``rate`` or replayed from a
trace), how long they take (:class:`ServiceSpec`), which keys they carry
(:class:`KeySpec`), whether a server keeps a cache of the keys it served
(:class:`CacheSpec`), server failures and drains, the health-check, slow-start
and ``max_in_flight`` settings of the :class:`~balancekit.pool.Pool` under
test, and how clients retry (``attempts`` and a :class:`RetryBudgetSpec`).

Every field is checked when the object is built; a bad value raises
:class:`ScenarioError` naming the field (with its path in the file, such as
``servers[2].capacity``) and the value. Loading from TOML or JSON lives in
:mod:`balancekit.sim.files`.
The file format is described in docs/simulator.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any, NamedTuple

from ..errors import BalancekitError
from ._shown import LongNumber, shown

__all__ = [
    "BUILTIN_SCENARIO",
    "CacheSpec",
    "DrainSpec",
    "FailureSpec",
    "HealthSpec",
    "KeySpec",
    "RetryBudgetSpec",
    "Scenario",
    "ScenarioError",
    "ServerSpec",
    "ServiceSpec",
    "TraceRow",
]

MAX_UNIVERSE = 1_000_000
"""The most distinct keys a scenario may draw from (keys are rendered as IPv4 addresses)."""

MAX_NUMBER = 1e9
"""No number in a scenario may exceed this (seconds, rates, speeds). Beyond it a
simulated clock stops resolving small steps (1e308 + 0.001 == 1e308) and
distributions overflow; no workload worth simulating needs it."""

MAX_SERVER_WEIGHT = 1000.0
"""A scenario server's largest weight. Weights are relative; the cap keeps a ring's
points (vnodes x weight) quick to build."""

MAX_SIGMA = 10.0
"""A lognormal sigma beyond this draws service times that overflow a float."""

MAX_REQUESTS = 10_000_000
"""The most requests one simulation may make (``requests``, or ``rate x duration``)."""

MAX_PROBES = 5_000_000
"""The most health probes one simulation may expect (servers x time / interval):
probes run for as long as requests arrive or are open, whatever their number."""

MAX_SERVERS = 1000
"""The most servers a scenario may have: a ring holds 160 points per unit of weight and
server, and every server is probed; past this a run takes hours, not minutes."""

MAX_ATTEMPTS = 10
"""The most tries per request (``attempts``). gRPC caps its retry policy's ``maxAttempts``
at 5; past 10, a scenario whose servers all fail costs ten times its requests in a run."""

MAX_SEED = 2**64 - 1
"""The largest seed (seeds are integers in [0, 2**64 - 1])."""


class ScenarioError(BalancekitError, ValueError):
    """A scenario field has a bad value; ``field`` is its path, such as ``servers[2].capacity``,
    and ``got`` the value as shown (``None``: not shown).

    >>> str(ScenarioError("capacity", "must be an integer >= 1", "0").within("servers[2]"))
    'servers[2].capacity must be an integer >= 1, got 0'
    """

    def __init__(self, field: str, detail: str, got: str | None = None) -> None:
        self.field = field
        self.detail = detail
        self.got = got
        message = f"{field} {detail}" if field else detail
        super().__init__(message if got is None else f"{message}, got {got}")

    def within(self, prefix: str) -> ScenarioError:
        """The same error with ``prefix`` prepended to its field path. O(1)."""
        field = f"{prefix}.{self.field}" if self.field else prefix
        return ScenarioError(field, self.detail, self.got)

    def without_value(self) -> ScenarioError:
        """The same error without the value: for input that must not be echoed. O(1)."""
        return ScenarioError(self.field, self.detail)


def _bad(name: str, expected: str, value: object) -> ScenarioError:
    return ScenarioError(name, f"must be {expected}", shown(value))


def _over(name: str, high: str, limit: str, value: object) -> ScenarioError:
    return ScenarioError(name, f"must be at most {high} ({limit})", shown(value))


def _number(
    name: str,
    value: object,
    *,
    low: float = 0.0,
    strict: bool = False,
    high: float = MAX_NUMBER,
    limit: str = "the limit on any number in a scenario",
) -> float:
    """A finite real number >= ``low`` (> ``low`` when ``strict``), at most ``high`` (the
    ``limit`` named in the error); ``bool`` is not a number."""
    expected = f"a finite number {'>' if strict else '>='} {low:g}"
    if isinstance(value, LongNumber):
        raise _over(name, f"{high:g}", limit, value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(name, expected, value)
    if isinstance(value, float) and not math.isfinite(value):
        raise _bad(name, expected, value)
    if value > high:  # before float(): a huge int would overflow it
        raise _over(name, f"{high:g}", limit, value)
    result = float(value)
    if result < low or (strict and result == low):
        raise _bad(name, expected, value)
    return result


def _integer(
    name: str, value: object, *, low: int = 1, high: int | None = None, limit: str = ""
) -> int:
    """An integer >= ``low``, at most ``high`` (the ``limit`` named in the error)."""
    if isinstance(value, LongNumber) and high is not None:
        raise _over(name, f"{high:,}", limit, value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(name, f"an integer >= {low}", value)
    if value < low:
        raise _bad(name, f"an integer >= {low}", value)
    if high is not None and value > high:
        raise _over(name, f"{high:,}", limit, value)
    return value


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise _bad(name, "a non-empty string", value)
    return value


def _choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _bad(name, "one of " + ", ".join(repr(c) for c in choices), value)
    return str(value)


def _store(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)  # normalising a frozen dataclass in __post_init__


def _options(spec: Any) -> dict[str, Any]:
    """A spec's fields but ``enabled``: the keyword arguments of the component it describes."""
    return {f.name: getattr(spec, f.name) for f in fields(spec) if f.name != "enabled"}


@dataclass(frozen=True)
class ServerSpec:
    """One server: ``capacity`` requests served at once (more wait in its FIFO queue),
    ``speed`` as a service-rate multiplier (2.0 halves every service time) and the
    ``weight`` the pool gives it (0: a member that gets nothing, as in the library).

    >>> ServerSpec("s1", capacity=8, speed=1.5, weight=12)
    ServerSpec(name='s1', capacity=8, speed=1.5, weight=12.0)

    Raises:
        ScenarioError: an empty name, a capacity that is not an integer >= 1,
            a speed that is not a finite number > 0 (at most 1e9) or a weight
            that is not a finite number >= 0 (at most ``MAX_SERVER_WEIGHT``).
    """

    name: str
    capacity: int = 1
    speed: float = 1.0
    weight: float = 1.0

    def __post_init__(self) -> None:
        _text("name", self.name)
        _integer("capacity", self.capacity)
        _store(self, "speed", _number("speed", self.speed, strict=True))
        weight = _number(
            "weight", self.weight, high=MAX_SERVER_WEIGHT, limit="the limit on a server's weight"
        )
        _store(self, "weight", weight)


@dataclass(frozen=True)
class ServiceSpec:
    """Service time at speed 1, in seconds: ``fixed`` (always ``mean``), ``exponential``
    (mean ``mean``) or ``lognormal`` (mean ``mean``, log-space deviation ``sigma``:
    heavy-tailed, with a rare request far slower than the rest).

    >>> ServiceSpec("lognormal", mean=0.05, sigma=1.5).sigma
    1.5

    Raises:
        ScenarioError: an unknown distribution, ``mean`` not in (0, 1e9] or
            ``sigma`` not in [0, ``MAX_SIGMA``].
    """

    distribution: str = "exponential"
    mean: float = 0.05
    sigma: float = 1.0

    def __post_init__(self) -> None:
        _choice("distribution", self.distribution, ("fixed", "exponential", "lognormal"))
        _store(self, "mean", _number("mean", self.mean, strict=True))
        sigma = _number("sigma", self.sigma, high=MAX_SIGMA, limit="the limit on a lognormal sigma")
        _store(self, "sigma", sigma)


@dataclass(frozen=True)
class KeySpec:
    """The key each request carries: ``none``, ``uniform`` over ``universe`` keys, or
    ``zipf`` over ``universe`` keys with exponent ``s`` (key 0 is the hottest).

    >>> KeySpec("zipf", universe=100, s=1.2)
    KeySpec(distribution='zipf', universe=100, s=1.2)

    Raises:
        ScenarioError: an unknown distribution, ``universe`` outside
            [1, MAX_UNIVERSE] or ``s`` not > 0.
    """

    distribution: str = "none"
    universe: int = 1000
    s: float = 1.0

    def __post_init__(self) -> None:
        _choice("distribution", self.distribution, ("none", "uniform", "zipf"))
        _integer("universe", self.universe, high=MAX_UNIVERSE, limit="the limit on distinct keys")
        _store(self, "s", _number("s", self.s, strict=True))


@dataclass(frozen=True)
class CacheSpec:
    """Per-server caches: a request whose key was last served by the same server is a
    hit; a miss takes ``miss_factor`` times as long.

    Raises:
        ScenarioError: ``miss_factor`` below 1.
    """

    miss_factor: float = 2.0

    def __post_init__(self) -> None:
        _store(self, "miss_factor", _number("miss_factor", self.miss_factor, low=1.0))


@dataclass(frozen=True)
class FailureSpec:
    """``server`` is down from ``at`` until ``until``: what it holds fails at ``at``, new
    requests fail after ``error_time`` seconds, and its health probes fail.

    >>> FailureSpec("s2", at=10, until=5)
    Traceback (most recent call last):
    ...
    balancekit.sim.scenario.ScenarioError: until must be later than at (10), got 5.0

    Raises:
        ScenarioError: a negative time, or ``until`` not after ``at``.
    """

    server: str
    at: float
    until: float
    error_time: float = 0.001

    def __post_init__(self) -> None:
        _text("server", self.server)
        _store(self, "at", _number("at", self.at))
        _store(self, "until", _number("until", self.until))
        if self.until <= self.at:
            raise _bad("until", f"later than at ({self.at:g})", self.until)
        _store(self, "error_time", _number("error_time", self.error_time))


@dataclass(frozen=True)
class DrainSpec:
    """``server`` is drained at ``at``; requests still open after ``timeout`` are cut.

    Raises:
        ScenarioError: an empty server name, or a negative or non-finite time.
    """

    server: str
    at: float
    timeout: float = 30.0

    def __post_init__(self) -> None:
        _text("server", self.server)
        _store(self, "at", _number("at", self.at))
        _store(self, "timeout", _number("timeout", self.timeout))


@dataclass(frozen=True)
class HealthSpec:
    """The pool's :class:`~balancekit.health.HealthTracker` options (``enabled=False``: none).

    The simulator answers each probe the moment it is due: it succeeds iff
    the server is up.

    Raises:
        ScenarioError: a value ``HealthTracker`` would refuse (the same rules).
    """

    enabled: bool = True
    interval: float = 5.0
    timeout: float = 2.0
    unhealthy_threshold: int = 3
    healthy_threshold: int = 2
    jitter: float = 0.0
    consecutive_failures: int = 5
    base_ejection: float = 30.0
    max_ejection: float = 300.0
    max_ejected_percent: float = 10.0

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise _bad("enabled", "true or false", self.enabled)
        for name in ("interval", "timeout", "base_ejection", "max_ejection"):
            _store(self, name, _number(name, getattr(self, name), strict=True))
        for name in ("unhealthy_threshold", "healthy_threshold", "consecutive_failures"):
            _integer(name, getattr(self, name))
        _store(self, "jitter", _number("jitter", self.jitter))
        _store(
            self, "max_ejected_percent", _number("max_ejected_percent", self.max_ejected_percent)
        )
        if self.timeout >= self.interval:
            raise _bad("timeout", f"shorter than interval ({self.interval:g})", self.timeout)
        if self.jitter >= self.interval:
            raise _bad("jitter", f"shorter than interval ({self.interval:g})", self.jitter)
        if self.max_ejection < self.base_ejection:
            raise _bad(
                "max_ejection", f">= base_ejection ({self.base_ejection:g})", self.max_ejection
            )
        if self.max_ejected_percent > 100:
            raise _bad("max_ejected_percent", "a number in [0, 100]", self.max_ejected_percent)

    def options(self) -> dict[str, Any]:
        """The keyword arguments for ``HealthTracker``. O(1)."""
        return _options(self)


@dataclass(frozen=True)
class RetryBudgetSpec:
    """The clients' :class:`~balancekit.retry.RetryBudget` (``enabled=False``: retry
    whenever ``attempts`` allow). Used only when the scenario's ``attempts`` exceed 1.

    >>> RetryBudgetSpec(ratio=0.1).options()
    {'ratio': 0.1, 'min_retries_per_second': 10.0, 'ttl': 10.0}
    >>> RetryBudgetSpec(ttl=90)
    Traceback (most recent call last):
    ...
    balancekit.sim.scenario.ScenarioError: ttl must be at most 60 (Finagle's bound), got 90

    Raises:
        ScenarioError: a value ``RetryBudget`` would refuse (``ratio`` in [0, 1000],
            ``min_retries_per_second`` >= 0, ``ttl`` in [1, 60] seconds), or
            ``enabled`` not a bool.
    """

    enabled: bool = True
    ratio: float = 0.2
    min_retries_per_second: float = 10.0
    ttl: float = 10.0

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise _bad("enabled", "true or false", self.enabled)
        bound = "Finagle's bound"
        _store(self, "ratio", _number("ratio", self.ratio, high=1000.0, limit=bound))
        minimum = _number("min_retries_per_second", self.min_retries_per_second)
        _store(self, "min_retries_per_second", minimum)
        _store(self, "ttl", _number("ttl", self.ttl, low=1.0, high=60.0, limit=bound))

    def options(self) -> dict[str, Any]:
        """The keyword arguments for ``RetryBudget``. O(1)."""
        return _options(self)


class TraceRow(NamedTuple):
    """One replayed request: arrival ``time``, its ``key`` and its ``service`` time at
    speed 1 (``None``: drawn from the scenario's keys or service distribution)."""

    time: float
    key: str | None
    service: float | None


@dataclass(frozen=True)
class Scenario:
    """A workload and the servers that take it; see docs/simulator.md.

    Requests arrive as a Poisson process of ``rate`` per second, or as the
    ``trace`` rows; arrivals stop after ``requests`` of them or at ``duration``
    seconds, whichever comes first (a Poisson scenario needs one of them).

    A failed request is tried again, up to ``attempts`` tries in all, each on a
    server it has not tried yet, while the ``retry_budget`` allows;
    ``max_in_flight`` caps the requests open on one server (``None``: no cap).

    >>> s = Scenario((ServerSpec("a"), ServerSpec("b")), rate=10.0, requests=100)
    >>> s.requests, s.keys.distribution, s.health.interval
    (100, 'none', 5.0)
    >>> Scenario((ServerSpec("a"),), rate=-1.0, requests=5)
    Traceback (most recent call last):
    ...
    balancekit.sim.scenario.ScenarioError: rate must be a finite number > 0, got -1.0

    Raises:
        ScenarioError: (a ``ValueError``) a field has a bad value or exceeds a
            limit (``MAX_NUMBER``, ``MAX_REQUESTS``, ``MAX_PROBES``, ``MAX_ATTEMPTS``), or a
            failure or drain names a server that is not in ``servers``.
    """

    servers: tuple[ServerSpec, ...]
    rate: float | None = None
    trace: tuple[TraceRow, ...] | None = None
    requests: int | None = None
    duration: float | None = None
    service: ServiceSpec = field(default_factory=ServiceSpec)
    keys: KeySpec = field(default_factory=KeySpec)
    cache: CacheSpec | None = None
    failures: tuple[FailureSpec, ...] = ()
    drains: tuple[DrainSpec, ...] = ()
    health: HealthSpec = field(default_factory=HealthSpec)
    slow_start: float = 0.0
    panic_threshold: float = 0.5
    seed: int = 0
    name: str = "scenario"
    attempts: int = 1
    retry_budget: RetryBudgetSpec = field(default_factory=RetryBudgetSpec)
    max_in_flight: int | None = None

    def __post_init__(self) -> None:
        _store(self, "servers", tuple(self.servers))
        _store(self, "failures", tuple(self.failures))
        _store(self, "drains", tuple(self.drains))
        if not self.servers:
            raise _bad("servers", "at least one server", self.servers)
        if len(self.servers) > MAX_SERVERS:
            limit = "the limit on servers in a scenario"
            raise ScenarioError(
                "servers", f"must be at most {MAX_SERVERS:,} ({limit})", f"{len(self.servers):,}"
            )
        names: set[str] = set()
        for i, spec in enumerate(self.servers):
            if not isinstance(spec, ServerSpec):
                raise _bad(f"servers[{i}]", "a ServerSpec", spec)
            if spec.name in names:
                raise _bad(f"servers[{i}].name", "unique", spec.name)
            names.add(spec.name)
        if all(spec.weight == 0 for spec in self.servers):
            raise ScenarioError("servers", "must include one of weight > 0")
        if (self.rate is None) == (self.trace is None):
            raise _bad("rate", "given, or else trace, but not both", self.rate)
        if self.rate is not None:
            _store(self, "rate", _number("rate", self.rate, strict=True))
            if self.requests is None and self.duration is None:
                raise _bad("requests", "given (or duration) for Poisson arrivals", None)
        if self.trace is not None:
            _store(self, "trace", _inline_trace(self.trace))
        per_run = f"the limit of {MAX_REQUESTS:,} requests in one run"
        if self.requests is not None:
            _integer("requests", self.requests, high=MAX_REQUESTS, limit=per_run)
        if self.duration is not None:
            _store(self, "duration", _number("duration", self.duration, strict=True))
            planned = self.rate * self.duration if self.rate is not None else 0.0
            if self.requests is None and planned > MAX_REQUESTS:
                assert self.rate is not None
                longest = f"{MAX_REQUESTS / self.rate:,.6g} s at rate {self.rate:g}/s"
                raise _over("duration", longest, per_run, self.duration)
        for name, kind in (
            ("service", ServiceSpec),
            ("keys", KeySpec),
            ("health", HealthSpec),
            ("cache", CacheSpec),
            ("retry_budget", RetryBudgetSpec),
        ):
            value = getattr(self, name)
            if not isinstance(value, kind) and not (name == "cache" and value is None):
                raise _bad(name, f"a {kind.__name__}", value)
        self._check_events(names)
        self._check_probes()
        _store(self, "slow_start", _number("slow_start", self.slow_start))
        threshold = _number("panic_threshold", self.panic_threshold)
        if threshold > 1:
            raise _bad("panic_threshold", "a number in [0, 1]", self.panic_threshold)
        _store(self, "panic_threshold", threshold)
        _integer("seed", self.seed, low=0, high=MAX_SEED, limit="the largest seed")
        _text("name", self.name)
        _integer("attempts", self.attempts, high=MAX_ATTEMPTS, limit="the limit on tries")
        if self.max_in_flight is not None:
            _integer("max_in_flight", self.max_in_flight, high=MAX_REQUESTS, limit=per_run)

    def _horizon(self) -> float:
        """Roughly how long the pool runs, in simulated seconds: until requests stop
        arriving, plus ten mean service times on the slowest server for the last
        ones to finish (probes go on while any request is open)."""
        if self.trace is not None:
            rows = self.trace
            if self.requests is not None:
                rows = rows[: self.requests]
            end = rows[-1].time
            if self.duration is not None:
                end = min(end, self.duration)
            longest = max([row.service or 0.0 for row in rows] + [10 * self.service.mean])
        else:
            assert self.rate is not None
            end = min(self.duration or math.inf, (self.requests or math.inf) / self.rate)
            longest = 10 * self.service.mean
        return end + longest / min(spec.speed for spec in self.servers)

    def _check_probes(self) -> None:
        health = self.health
        if not health.enabled:
            return
        probes = self._horizon() / health.interval * len(self.servers)
        if probes > MAX_PROBES:
            least = self._horizon() * len(self.servers) / MAX_PROBES
            raise _bad(
                "health.interval",
                f"at least {least:.3g} s (the limit of {MAX_PROBES:,} health probes in one run:"
                f" {len(self.servers)} servers probed for about {self._horizon():.3g} s)",
                health.interval,
            )

    def _check_events(self, names: set[str]) -> None:
        down: dict[str, float] = {}
        for i, failure in enumerate(self.failures):
            if not isinstance(failure, FailureSpec):
                raise _bad(f"failures[{i}]", "a FailureSpec", failure)
            if failure.server not in names:
                raise _bad(f"failures[{i}].server", "the name of a server", failure.server)
            if failure.at < down.get(failure.server, -math.inf):
                raise _bad(f"failures[{i}].at", "after the server's previous failure", failure.at)
            down[failure.server] = failure.until
        drained: set[str] = set()
        for i, drain in enumerate(self.drains):
            if not isinstance(drain, DrainSpec):
                raise _bad(f"drains[{i}]", "a DrainSpec", drain)
            if drain.server not in names:
                raise _bad(f"drains[{i}].server", "the name of a server", drain.server)
            if drain.server in drained:
                raise _bad(f"drains[{i}].server", "a server drained only once", drain.server)
            drained.add(drain.server)

    def with_seed(self, seed: int) -> Scenario:
        """The same scenario with another seed. O(1) plus validation.

        Raises:
            ScenarioError: ``seed`` is not an integer >= 0.
        """
        return replace(self, seed=seed)


# -- trace rows ----------------------------------------------------------------
# Here, not in files.py, because Scenario validates an inline trace with them.


def _trace_rows(rows: Iterable[tuple[str, object]]) -> tuple[TraceRow, ...]:
    """Validate ``(label, [time, key, service])`` rows; ``label`` names a row in errors."""
    result: list[TraceRow] = []
    previous = 0.0
    for here, row in rows:
        if not isinstance(row, (list, tuple)) or len(row) != 3:
            raise _bad(here, "a [time, key, service] row", row)
        time = _number(f"{here}.time", row[0])
        if time < previous:
            raise _bad(f"{here}.time", "not earlier than the row before", row[0])
        previous = time
        key = row[1]
        if key == "":
            key = None
        elif key is not None:
            if isinstance(key, bool) or not isinstance(key, (int, str)):
                raise _bad(f"{here}.key", "a string, an integer or empty", key)
            key = str(key)
        service = None if row[2] in (None, "") else _number(f"{here}.service", row[2], strict=True)
        result.append(TraceRow(time, key, service))
    return tuple(result)


def _inline_trace(rows: object) -> tuple[TraceRow, ...]:
    if not isinstance(rows, (list, tuple)) or not rows:
        raise _bad("trace", "a file name or a non-empty list of [time, key, service] rows", rows)
    return _trace_rows((f"trace[{i}]", row) for i, row in enumerate(rows))


# -- the built-in scenario -----------------------------------------------------

BUILTIN_SCENARIO = Scenario(
    name="builtin",
    servers=(
        ServerSpec("s1", capacity=8, speed=1.0, weight=8),
        ServerSpec("s2", capacity=8, speed=1.0, weight=8),
        ServerSpec("s3", capacity=4, speed=1.0, weight=4),
        ServerSpec("s4", capacity=4, speed=0.5, weight=2),
        ServerSpec("s5", capacity=12, speed=1.5, weight=18),
        ServerSpec("s6", capacity=4, speed=0.5, weight=2),
    ),
    rate=250.0,
    duration=40.0,
    service=ServiceSpec("lognormal", mean=0.04, sigma=1.4),
    keys=KeySpec("zipf", universe=5000, s=1.0),
    cache=CacheSpec(miss_factor=2.0),
    failures=(FailureSpec("s2", at=10.0, until=25.0),),
    drains=(DrainSpec("s6", at=30.0, timeout=5.0),),
    health=HealthSpec(interval=2.0, timeout=1.0, unhealthy_threshold=3, healthy_threshold=2),
    slow_start=0.0,
    seed=1,
)
"""Six unequal servers, heavy-tailed (lognormal) service times, Zipf-skewed keys with
per-server caches, one failure and recovery of s2 and one drain of s6."""
