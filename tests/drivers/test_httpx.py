from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

import balancekit as bk
from balancekit.drivers.httpx import AsyncBalancedTransport, BalancedTransport

from .backends import Backend, Silent, free_port


class Never:
    """A retry budget that allows no retry (the RetryBudget protocol)."""

    deposits = 0

    def deposit(self) -> None:
        self.deposits += 1

    def try_withdraw(self) -> bool:
        return False


@pytest.fixture
def three(backends: Callable[..., Backend]) -> list[Backend]:
    return [backends(name) for name in ("a", "b", "c")]


def client_for(pool: bk.Pool, **options: object) -> httpx.Client:
    transport = BalancedTransport(pool, **options)  # type: ignore[arg-type]
    return httpx.Client(transport=transport, base_url="http://service", timeout=2.0)


@pytest.fixture
def make_client() -> Iterator[Callable[..., httpx.Client]]:
    made: list[httpx.Client] = []

    def make(pool: bk.Pool, **options: object) -> httpx.Client:
        client = client_for(pool, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def in_flight(pool: bk.Pool) -> dict[str, int]:
    return {server: stats.in_flight for server, stats in pool.stats().items()}


def test_requests_go_to_the_chosen_servers_path_and_query_kept(
    three: list[Backend], make_client: Callable[..., httpx.Client]
) -> None:
    pool = bk.Pool(bk.RoundRobin([b.url for b in three]))
    client = make_client(pool)
    bodies = [client.get("/items/7?x=1").text for _ in range(6)]
    assert bodies == ["a /items/7?x=1", "b /items/7?x=1", "c /items/7?x=1"] * 2
    assert all(b.hits["GET /items/7"] == 2 for b in three)
    stats = pool.stats()
    assert all(s.requests == 2 and s.errors == 0 and s.in_flight == 0 for s in stats.values())


def test_the_lease_is_held_until_a_streamed_response_is_closed(
    backends: Callable[..., Backend], make_client: Callable[..., httpx.Client]
) -> None:
    a = backends("a")
    pool = bk.Pool(bk.LeastConnections([a.url]))
    client = make_client(pool)
    with client.stream("GET", "/stream") as response:
        assert response.status_code == 200
        assert in_flight(pool) == {a.url: 1}  # headers are in, the body is not
        chunks = response.iter_raw()
        assert len(next(chunks)) == 1000 and in_flight(pool) == {a.url: 1}  # half read
        a.release_stream.set()
        assert sum(len(chunk) for chunk in chunks) == 1000
        assert in_flight(pool) == {a.url: 0}  # httpx closes a stream read to the end
    with client.stream("GET", "/stream") as response:
        assert in_flight(pool) == {a.url: 1}
    assert in_flight(pool) == {a.url: 0}  # closed unread
    assert pool.stats()[a.url].requests == 2 and pool.stats()[a.url].errors == 0


def test_a_post_is_not_retried_by_default_a_get_is(
    three: list[Backend], make_client: Callable[..., httpx.Client]
) -> None:
    a, b, _ = three
    a.status = 503
    pool = bk.Pool(bk.RoundRobin([x.url for x in three]))
    client = make_client(pool)
    response = client.post("/write", content=b"payload")
    assert response.status_code == 503 and response.text == "a /write"
    assert sum(x.hits["POST /write"] for x in three) == 1
    # the rotation is back at a: the GET fails there and is retried on b
    client.get("/x")  # b
    client.get("/x")  # c
    response = client.get("/read")
    assert response.status_code == 200 and response.text == "b /read"
    assert a.hits["GET /read"] == 1 and b.hits["GET /read"] == 1
    assert pool.stats()[a.url].errors == 2  # a 5xx is a failure of the server


def test_retry_methods_can_include_post(
    three: list[Backend], make_client: Callable[..., httpx.Client]
) -> None:
    three[0].status = 502
    pool = bk.Pool(bk.RoundRobin([x.url for x in three]))
    client = make_client(pool, retry_methods={"GET", "POST"})
    response = client.post("/write", content=b"payload")
    assert response.status_code == 200 and response.text == "b /write"


def test_when_retries_run_out_the_last_response_is_returned_unchanged(
    three: list[Backend], make_client: Callable[..., httpx.Client]
) -> None:
    for backend in three:
        backend.status = 503
    pool = bk.Pool(bk.RoundRobin([x.url for x in three]), panic_threshold=0.0)
    client = make_client(pool)
    response = client.get("/x")
    assert response.status_code == 503 and response.text == "c /x"  # the third try's
    assert [x.hits["GET /x"] for x in three] == [1, 1, 1]
    assert all(s.in_flight == 0 and s.errors == 1 for s in pool.stats().values())


def test_empty_retry_statuses_retry_no_response(
    three: list[Backend], make_client: Callable[..., httpx.Client]
) -> None:
    three[0].status = 503
    pool = bk.Pool(bk.RoundRobin([x.url for x in three]))
    client = make_client(pool, retry_statuses=())
    assert client.get("/x").status_code == 503
    assert [x.hits["GET /x"] for x in three] == [1, 0, 0]


def test_a_connection_error_is_retried_and_the_last_one_raised(
    backends: Callable[..., Backend], make_client: Callable[..., httpx.Client]
) -> None:
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    live = backends("live")
    pool = bk.Pool(bk.RoundRobin([*dead, live.url]), panic_threshold=0.0)
    client = make_client(pool)
    assert client.get("/x").text == "live /x"  # dead, dead, live
    assert pool.stats()[dead[0]].errors == 1 and pool.stats()[dead[1]].errors == 1
    pool_dead = bk.Pool(bk.RoundRobin(dead), panic_threshold=0.0)
    with pytest.raises(httpx.ConnectError):
        make_client(pool_dead).get("/x")
    assert all(s.in_flight == 0 and s.errors >= 1 for s in pool_dead.stats().values())


def test_attempts_one_and_an_empty_budget_mean_no_retry(
    three: list[Backend], make_client: Callable[..., httpx.Client]
) -> None:
    three[0].status = 503
    for options in ({"attempts": 1}, {"retry_budget": Never()}):
        pool = bk.Pool(bk.RoundRobin([x.url for x in three]))
        assert make_client(pool, **options).get("/x").status_code == 503
    assert three[0].hits["GET /x"] == 2 and three[1].hits["GET /x"] == 0
    budget = Never()
    pool = bk.Pool(bk.RoundRobin([x.url for x in three]))
    make_client(pool, retry_budget=budget).get("/y")
    assert budget.deposits == 1  # one deposit per request


def test_the_default_budget_is_a_retry_budget_and_it_limits_retries(
    three: list[Backend], make_client: Callable[..., httpx.Client]
) -> None:
    pool = bk.Pool(bk.RoundRobin([x.url for x in three]))
    assert isinstance(BalancedTransport(pool).retry_budget, bk.RetryBudget)
    for backend in three:
        backend.status = 503
    # half a retry per request, no reserve: 4 requests may retry twice in all
    budget = bk.RetryBudget(ratio=0.5, min_retries_per_second=0.0)
    client = make_client(pool, retry_budget=budget)
    for _ in range(4):
        assert client.get("/x").status_code == 503
    assert sum(x.hits["GET /x"] for x in three) == 4 + 2


def test_a_4xx_is_a_success_and_classify_overrides(
    backends: Callable[..., Backend], make_client: Callable[..., httpx.Client]
) -> None:
    a = backends("a")
    a.status = 404
    pool = bk.Pool(bk.RoundRobin([a.url]))
    assert make_client(pool).get("/x").status_code == 404
    assert pool.stats()[a.url].errors == 0
    strict = make_client(pool, classify=lambda response: response.status_code < 400)
    assert strict.get("/x").status_code == 404
    assert pool.stats()[a.url].errors == 1


def test_retries_go_to_servers_not_yet_tried(
    three: list[Backend], make_client: Callable[..., httpx.Client]
) -> None:
    for backend in three:
        backend.status = 503
    # Without exclusion a hash strategy would send every try to the key's server.
    pool = bk.Pool(bk.ConsistentHash([x.url for x in three]), panic_threshold=0.0)
    client = make_client(pool, key=lambda request: request.headers["x-user"])
    assert client.get("/x", headers={"x-user": "u1"}).status_code == 503
    assert sorted(x.hits["GET /x"] for x in three) == [1, 1, 1]


def test_key_picks_the_hash_key(
    three: list[Backend], make_client: Callable[..., httpx.Client]
) -> None:
    pool = bk.Pool(bk.ConsistentHash([x.url for x in three]))
    client = make_client(pool, key=lambda request: request.headers.get("x-user", ""))
    for user in ("alice", "bob", "carol", "dave"):
        expected = pool.strategy.get_server(user)
        for _ in range(3):
            text = client.get("/x", headers={"x-user": user}).text
            assert next(b for b in three if b.url == expected).name == text.split()[0]


def test_sticky_cookie_round_trip(
    three: list[Backend], make_client: Callable[..., httpx.Client]
) -> None:
    sticky = bk.StickySession("a long secret for the test", ttl=600)
    pool = bk.Pool(bk.RoundRobin([x.url for x in three]), sticky=sticky)
    client = make_client(pool)
    first = client.get("/x")
    attributes = first.headers["set-cookie"].split("; ")[1:]
    assert attributes == ["Path=/", "HttpOnly", "SameSite=Lax", "Max-Age=600"]  # not Secure
    name = first.text.split()[0]
    assert [client.get("/x").text.split()[0] for _ in range(5)] == [name] * 5
    backend = next(b for b in three if b.name == name)
    assert all("bk_route=" in cookie for cookie in backend.last_cookies[1:])
    pool.drain(backend.url)  # drained: the session moves, with a new cookie
    moved = client.get("/x")
    assert moved.text.split()[0] != name and "set-cookie" in moved.headers
    other = httpx.Client(transport=BalancedTransport(pool), base_url="http://service")
    with other:  # a fresh client has no cookie: the strategy chooses
        assert other.get("/x").status_code == 200


def test_a_drained_backend_gets_nothing_and_every_lease_is_released(
    three: list[Backend], make_client: Callable[..., httpx.Client]
) -> None:
    pool = bk.Pool(bk.LeastConnections([x.url for x in three]))
    client = make_client(pool)
    for _ in range(6):
        client.get("/x")
    pool.drain(three[1].url)
    before = three[1].hits["GET /x"]
    for _ in range(30):
        client.get("/x")
    assert three[1].hits["GET /x"] == before
    assert all(s.in_flight == 0 for s in pool.stats().values())


def test_an_interrupt_releases_the_lease_abandoned(
    backends: Callable[..., Backend], make_client: Callable[..., httpx.Client]
) -> None:
    a = backends("a")
    pool = bk.Pool(bk.RoundRobin([a.url]), health=bk.HealthTracker(consecutive_failures=1))

    def interrupted(response: httpx.Response) -> bool:
        raise KeyboardInterrupt  # as if the user pressed ^C while the answer came in

    with pytest.raises(KeyboardInterrupt):
        make_client(pool, classify=interrupted).get("/x")
    stats = pool.stats()[a.url]
    assert (stats.in_flight, stats.requests, stats.errors, stats.abandoned) == (0, 1, 0, 1)
    assert stats.health is bk.HealthState.HEALTHY  # one failure would have ejected it


@pytest.mark.parametrize(
    "bad",
    [
        "10.0.0.2:80",
        "ftp://10.0.0.2:21",
        "http://",
        "http://h:99999",
        "http://10.0.0.2:80/api",  # a path every request would lose
        "http://user:pw@10.0.0.2:80",
        "http://10.0.0.2:80?x=1",
    ],
)
def test_a_pool_member_that_is_not_an_http_url_is_refused_at_construction(bad: str) -> None:
    pool = bk.Pool(bk.RoundRobin(["http://10.0.0.1:80", bad]))
    before = pool.stats()
    with pytest.raises(
        ValueError, match=f"server ids must be base URLs .*, got {re.escape(repr(bad))}"
    ):
        BalancedTransport(pool)
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        AsyncBalancedTransport(pool)
    assert pool.stats() == before  # nothing acquired


def test_a_member_added_later_that_is_not_a_url_fails_its_request_clearly_and_is_ejected(
    backends: Callable[..., Backend], make_client: Callable[..., httpx.Client]
) -> None:
    live = backends("live")
    tracker = bk.HealthTracker(consecutive_failures=1)
    pool = bk.Pool(bk.RoundRobin([live.url]), health=tracker, panic_threshold=0.0)
    client = make_client(pool)
    assert client.get("/x").status_code == 200
    pool.update([live.url, "10.0.0.9:80"])  # as a DNSDiscovery without scheme= would
    outcomes = []
    for _ in range(6):
        try:
            outcomes.append(client.get("/x").status_code)
        except ValueError as error:
            assert "got '10.0.0.9:80'" in str(error)
            outcomes.append(0)
    assert outcomes.count(0) == 1 and outcomes.count(200) == 5
    stats = pool.stats()["10.0.0.9:80"]
    # A failure, not an abandoned lease: the member can serve nothing through this
    # transport, so health ejects it instead of letting it be picked again and again.
    assert (stats.in_flight, stats.errors, stats.abandoned) == (0, 1, 0)
    assert stats.health is bk.HealthState.EJECTED


@pytest.mark.parametrize(
    ("options", "error", "words"),
    [
        ({"attempts": 0}, ValueError, "attempts must be an int >= 1, got 0"),
        ({"attempts": 2.0}, TypeError, "attempts must be an int >= 1, got 2.0"),
        ({"retry_statuses": [503, 700]}, ValueError, "retry_statuses must hold HTTP statuses"),
        ({"retry_statuses": "503"}, TypeError, "retry_statuses must be a collection"),
        ({"retry_statuses": [503.0]}, TypeError, "retry_statuses must hold ints, got 503.0"),
        ({"retry_methods": "GET"}, TypeError, "retry_methods must be a collection"),
        ({"retry_methods": 5}, TypeError, "retry_methods must be a collection .*, got 5"),
        ({"retry_methods": [1]}, TypeError, r"method name \(a str\), got 1"),
        ({"retry_methods": ["GET", b"PUT"]}, TypeError, "got b'PUT'"),
        ({"retry_methods": ["GE T"]}, ValueError, r"\(RFC 9110 token characters\), got 'GE T'"),
        ({"retry_methods": [""]}, ValueError, "token characters.*, got ''"),
        ({"retry_methods": ["GET\r\n"]}, ValueError, r"got 'GET\\r\\n'"),
        ({"retry_methods": ["PÖST"]}, ValueError, "got 'PÖST'"),
        ({"retry_budget": 5}, TypeError, "retry_budget must be a RetryBudget, got 5"),
        ({"key": "user"}, TypeError, "key must be None or a callable, got 'user'"),
        ({"classify": 1}, TypeError, "classify must be None or a callable, got 1"),
        ({"transport": 1}, TypeError, "transport must be None, an BaseTransport"),
    ],
)
def test_bad_options(options: dict[str, object], error: type, words: str) -> None:
    pool = bk.Pool(bk.RoundRobin(["http://10.0.0.1:80"]))
    with pytest.raises(error, match=words):
        BalancedTransport(pool, **options)  # type: ignore[arg-type]
    if "transport" not in options:
        with pytest.raises(error, match=words):
            AsyncBalancedTransport(pool, **options)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="pool must be a Pool, got 'p'"):
        BalancedTransport("p")  # type: ignore[arg-type]


def test_retry_methods_are_upper_cased_tokens() -> None:
    pool = bk.Pool(bk.RoundRobin(["http://10.0.0.1:80"]))
    transport = BalancedTransport(pool, retry_methods=("get", "M-SEARCH", "PURGE"))
    assert "retry_methods=['GET', 'M-SEARCH', 'PURGE']" in repr(transport)
    assert "retry_methods=[]" in repr(BalancedTransport(pool, retry_methods=()))


def test_a_shared_inner_transport_and_repr(
    backends: Callable[..., Backend],
) -> None:
    a = backends("a")
    pool = bk.Pool(bk.RoundRobin([a.url]))
    inner = httpx.HTTPTransport()
    transport = BalancedTransport(pool, transport=inner, attempts=2)
    with httpx.Client(transport=transport, base_url="http://service") as client:
        assert client.get("/x").status_code == 200
    assert repr(transport).startswith("BalancedTransport(Pool(RoundRobin(")
    assert "attempts=2" in repr(transport) and "retry_statuses=[502, 503, 504]" in repr(transport)


def test_a_hung_backend_hit_by_per_try_timeouts_is_ejected(
    backends: Callable[..., Backend],
) -> None:
    hung, live = backends("hung"), backends("live")
    hung.hang.set()
    tracker = bk.HealthTracker(consecutive_failures=2, max_ejected_percent=50)
    pool = bk.Pool(bk.RoundRobin([hung.url, live.url]), health=tracker)
    transport = BalancedTransport(pool)
    try:
        with httpx.Client(transport=transport, base_url="http://service", timeout=0.1) as client:
            assert [client.get("/x").text for _ in range(4)] == ["live /x"] * 4
    finally:
        hung.hang.clear()
    assert pool.stats()[hung.url].health is bk.HealthState.EJECTED
    assert pool.stats()[hung.url].errors == 2


def test_a_backend_killed_under_load_gets_no_new_request_a_second_later(
    backends: Callable[..., Backend],
) -> None:
    live, doomed = backends("live"), backends("doomed")
    tracker = bk.HealthTracker(consecutive_failures=2, max_ejected_percent=50)
    pool = bk.Pool(bk.RoundRobin([live.url, doomed.url]), health=tracker)
    client = httpx.Client(transport=BalancedTransport(pool), base_url="http://service")
    failures: list[object] = []
    stop = threading.Event()

    def worker() -> None:
        for _ in range(2_000):  # bounded; ends when the test says so
            if stop.is_set():
                return
            try:
                if client.get("/x").status_code != 200:
                    failures.append("status")
            except Exception as error:
                failures.append(error)

    with client:
        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        doomed.kill()
        time.sleep(1.0)
        at_grace = pool.stats()[doomed.url].requests
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join(10.0)
    stats = pool.stats()
    assert failures == []  # each try on the dead server was retried on the live one
    assert stats[doomed.url].requests == at_grace and stats[doomed.url].errors >= 1
    assert stats[doomed.url].health is bk.HealthState.EJECTED
    assert stats[live.url].requests > 100 and all(s.in_flight == 0 for s in stats.values())


def test_a_sticky_request_whose_server_fails_is_retried_elsewhere_and_moves(
    three: list[Backend], make_client: Callable[..., httpx.Client]
) -> None:
    sticky = bk.StickySession("a long secret for the test")
    pool = bk.Pool(bk.RoundRobin([x.url for x in three]), sticky=sticky)
    client = make_client(pool)
    pinned = client.get("/x").text.split()[0]
    backend = next(b for b in three if b.name == pinned)
    backend.status = 503  # the pinned server fails: the retry may not go back to it
    moved = client.get("/x")
    assert moved.status_code == 200 and moved.text.split()[0] != pinned
    assert backend.hits["GET /x"] == 2  # the first request and the failed try
    new_cookie = sticky.server_from_cookie(client.cookies["bk_route"])
    assert new_cookie is not None and new_cookie != backend.url
    backend.status = 200
    assert client.get("/x").text.split()[0] == moved.text.split()[0]  # stays on the new one


def test_an_https_request_gets_a_secure_sticky_cookie_and_keeps_its_server(
    three: list[Backend],
) -> None:
    sticky = bk.StickySession("a long secret for the test")
    pool = bk.Pool(bk.RoundRobin([x.url for x in three]), sticky=sticky)
    transport = BalancedTransport(pool)
    # The client speaks https to the service name; the servers behind are http.
    with httpx.Client(transport=transport, base_url="https://service") as client:
        first = client.get("/x")
        attributes = first.headers["set-cookie"].split("; ")[1:]
        assert attributes == ["Path=/", "HttpOnly", "SameSite=Lax", "Secure"]
        name = first.text.split()[0]
        # the cookie jar sends a Secure cookie back over https: the session stays
        assert [client.get("/x").text.split()[0] for _ in range(4)] == [name] * 4
        assert "set-cookie" not in client.get("/x").headers  # known cookie: not set again


# -- a failure to connect is retried for every method -----------------------------------


def test_a_post_is_retried_after_a_refused_connection_and_sent_once(
    backends: Callable[..., Backend], make_client: Callable[..., httpx.Client]
) -> None:
    refused = f"http://127.0.0.1:{free_port()}"
    live = backends("live")
    pool = bk.Pool(bk.RoundRobin([refused, live.url]))  # RoundRobin: a fixed order
    client = make_client(pool)
    for i in range(20):
        response = client.post(f"/write/{i}", content=b"payload")
        assert (response.status_code, response.text) == (200, f"live /write/{i}")
    assert [live.hits[f"POST /write/{i}"] for i in range(20)] == [1] * 20  # each sent once
    stats = pool.stats()
    assert stats[refused].errors >= 10 and stats[refused].requests == stats[refused].errors
    assert all(s.in_flight == 0 for s in stats.values())


def test_the_connect_retry_still_needs_attempts_and_the_budget(
    backends: Callable[..., Backend], make_client: Callable[..., httpx.Client]
) -> None:
    refused = f"http://127.0.0.1:{free_port()}"
    live = backends("live")
    for options in ({"attempts": 1}, {"retry_budget": Never()}):
        pool = bk.Pool(bk.RoundRobin([refused, live.url]))
        with pytest.raises(httpx.ConnectError):
            make_client(pool, **options).post("/w", content=b"x")
    assert live.hits["POST /w"] == 0
    # PUT is idempotent, POST listed or not: a PUT meets the refusal and is retried too
    pool = bk.Pool(bk.RoundRobin([refused, live.url]))
    assert make_client(pool, retry_methods=()).put("/p", content=b"x").text == "live /p"


def test_a_post_is_retried_after_a_connect_timeout_but_not_a_read_timeout(
    backends: Callable[..., Backend],
) -> None:
    live = backends("live")
    timeout = httpx.Timeout(2.0, connect=0.3, read=0.3)
    silent = Silent()
    try:
        # https: the TLS handshake never completes (httpx.ConnectTimeout), nothing was sent
        handshake = f"https://127.0.0.1:{silent.port}"
        pool = bk.Pool(bk.RoundRobin([handshake, live.url]))
        transport = BalancedTransport(pool)
        with httpx.Client(transport=transport, base_url="http://service", timeout=timeout) as c:
            assert c.post("/w", content=b"x").text == "live /w"
        assert pool.stats()[handshake].errors == 1 and live.hits["POST /w"] == 1
        # http: the request is sent and no answer comes (httpx.ReadTimeout): it may
        # have been received, so a POST is not sent again
        unanswered = f"http://127.0.0.1:{silent.port}"
        pool = bk.Pool(bk.RoundRobin([unanswered, live.url]))
        transport = BalancedTransport(pool)
        with httpx.Client(transport=transport, base_url="http://service", timeout=timeout) as c:
            with pytest.raises(httpx.ReadTimeout):
                c.post("/r", content=b"x")
            assert live.hits["POST /r"] == 0
            # the rotation is at live, then back at the silent server: that GET's
            # read timeout is retried on live
            assert [c.get("/g").text for _ in range(2)] == ["live /g"] * 2
        assert pool.stats()[unanswered].errors == 2 and live.hits["GET /g"] == 2
    finally:
        silent.close()


def test_a_post_answered_503_is_not_retried(
    three: list[Backend], make_client: Callable[..., httpx.Client]
) -> None:
    three[0].status = 503
    pool = bk.Pool(bk.RoundRobin([x.url for x in three]))
    response = make_client(pool).post("/w", content=b"x")
    assert (response.status_code, response.text) == (503, "a /w")
    assert [x.hits["POST /w"] for x in three] == [1, 0, 0]


def test_a_streamed_post_body_is_not_retried_even_after_a_refused_connection(
    backends: Callable[..., Backend], make_client: Callable[..., httpx.Client]
) -> None:
    refused = f"http://127.0.0.1:{free_port()}"
    live = backends("live")
    pool = bk.Pool(bk.RoundRobin([refused, live.url]))

    def body() -> Iterator[bytes]:
        yield b"a generator"  # read once: it could not be sent again

    with pytest.raises(httpx.ConnectError):
        make_client(pool).post("/w", content=body())
    assert live.hits["POST /w"] == 0


@pytest.mark.parametrize(
    "headers",
    [
        [("Host", "api"), ("Accept", "*/*")],
        [(b"accept", b"*/*"), (b"HOST", b"api"), (b"X-Name", "café".encode())],
        [("Host", "a"), ("Host", "b")],  # two Host headers: the general path
        [("X-Only", "1")],  # none: the general path adds one
    ],
)
def test_the_host_swap_gives_what_copy_and_set_would(
    monkeypatch: pytest.MonkeyPatch, headers: list[tuple[str, str]] | list[tuple[bytes, bytes]]
) -> None:
    from balancekit.drivers import _http_rules

    assert _http_rules._FAST_HOST  # this httpx keeps the rows the swap expects
    rules = BalancedTransport(bk.Pool(bk.RoundRobin(["http://10.0.0.1:8080"])))._rules
    request = httpx.Request("GET", "http://api/x?q=1", headers=headers)
    before = request.headers.raw
    fast = rules.target(request, "http://10.0.0.1:8080")
    monkeypatch.setattr(_http_rules, "_FAST_HOST", False)
    general = rules.target(request, "http://10.0.0.1:8080")
    expected = request.headers.copy()
    expected["Host"] = "10.0.0.1:8080"
    for made in (fast, general):
        assert made.headers.raw == expected.raw
        assert made.headers.encoding == expected.encoding
        assert str(made.url) == "http://10.0.0.1:8080/x?q=1"
    assert request.headers.raw == before  # the caller's request is untouched
