"""The codec's cache of verified cookies: same answers, fixed bound, junk never enters."""

from __future__ import annotations

import threading

import pytest

from balancekit.sticky._cookie import VERIFIED_CACHE_SIZE, CookieCodec


def _codec() -> CookieCodec:
    return CookieCodec((b"new key", b"old key"), "bk_route")


def test_cached_answer_is_the_verified_answer() -> None:
    codec = _codec()
    token = codec.tokens("a")[0]
    cookie = codec.encode(token, 123.5)
    first = codec.decode(cookie)
    assert first == (0, token, 123.5)
    assert codec.decode(cookie) == first  # from the cache: the expiry is still returned
    assert codec.decode(cookie.encode()) == first  # bytes spelling, cached on its own


def test_junk_and_forgeries_never_enter_the_cache() -> None:
    codec = _codec()
    good = codec.encode(codec.tokens("a")[0], None)
    for i in range(10_000):
        assert codec.decode(f"junk{i}") is None
    forged = good[:-1] + ("A" if good[-1] != "A" else "B")
    assert codec.decode(forged) is None
    assert len(codec._verified) == 0


def test_the_bound_stays_fixed_and_the_oldest_goes_first() -> None:
    codec = _codec()
    token = codec.tokens("a")[0]
    cookies = [codec.encode(token, float(i)) for i in range(VERIFIED_CACHE_SIZE + 100)]
    for cookie in cookies:
        assert codec.decode(cookie) is not None
    assert len(codec._verified) == VERIFIED_CACHE_SIZE
    assert cookies[0] not in codec._verified and cookies[-1] in codec._verified
    assert codec.decode(cookies[0]) == (0, token, 0.0)  # evicted, still verifies


def test_a_str_subclass_is_verified_but_never_cached() -> None:
    class Sneaky(str):
        __hash__ = str.__hash__

        def __eq__(self, other: object) -> bool:
            return True

    codec = _codec()
    good = codec.encode(codec.tokens("a")[0], None)
    assert codec.decode(Sneaky(good)) is not None
    assert len(codec._verified) == 0
    assert codec.decode(Sneaky("x" * len(good))) is None


def test_wrong_type_still_raises() -> None:
    with pytest.raises(TypeError, match="cookie must be str, bytes or None"):
        _codec().decode(42)  # type: ignore[arg-type]


def test_threads_share_the_cache_without_errors() -> None:
    codec = _codec()
    token = codec.tokens("a")[0]
    cookies = [codec.encode(token, float(i)) for i in range(3 * VERIFIED_CACHE_SIZE // 2)]
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(len(cookies)):
                cookie = cookies[(i + offset) % len(cookies)]
                assert codec.decode(cookie) == (0, token, float((i + offset) % len(cookies)))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(k * 997,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert len(codec._verified) <= VERIFIED_CACHE_SIZE
