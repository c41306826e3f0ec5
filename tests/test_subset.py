"""deterministic_subset: the SRE book's subsetting, its properties and its bad input."""

from __future__ import annotations

import doctest
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancekit import deterministic_subset
from balancekit.quality import remapped_fraction

from .processes import outputs_under_hash_seeds

SERVERS = [f"10.0.{i // 256}.{i % 256}:80" for i in range(100)]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 60),
    size=st.integers(1, 60),
    round_=st.integers(0, 50),
    seed=st.integers(0, 2**64 - 1),
)
def test_one_round_gives_disjoint_subsets_covering_the_servers(
    n: int, size: int, round_: int, seed: int
) -> None:
    size = min(size, n)
    servers = [f"s{i}" for i in range(n)]
    count = n // size
    subsets = [
        deterministic_subset(servers, round_ * count + slot, size, seed=seed)
        for slot in range(count)
    ]
    used = [server for subset in subsets for server in subset]
    assert all(len(subset) == size for subset in subsets)
    assert len(set(used)) == len(used) == count * size  # disjoint
    assert set(used) <= set(servers)
    if n % size == 0:
        assert set(used) == set(servers)  # covering


def test_every_server_gets_the_same_number_of_clients() -> None:
    counts = Counter(s for c in range(300) for s in deterministic_subset(SERVERS, c, 10))
    assert set(counts.values()) == {30}  # 300 clients x 10 / 100 servers


def test_a_remainder_costs_at_most_one_client_per_round() -> None:
    servers = [f"s{i}" for i in range(105)]
    rounds = 30
    counts = Counter(s for c in range(10 * rounds) for s in deterministic_subset(servers, c, 10))
    assert len(counts) == 105
    assert max(counts.values()) == rounds  # a server is in at most one subset per round
    assert min(counts.values()) >= rounds // 2  # leftovers rotate between rounds
    one_round = {s for c in range(10) for s in deterministic_subset(servers, c, 10)}
    assert len(one_round) == 100


def test_input_order_is_irrelevant_and_the_seed_matters() -> None:
    shuffled = SERVERS[::-1]
    for client in range(20):
        assert deterministic_subset(shuffled, client, 7) == deterministic_subset(SERVERS, client, 7)
    assert deterministic_subset(SERVERS, 3, 10, seed=1) != deterministic_subset(SERVERS, 3, 10)
    # rounds shuffle differently
    assert deterministic_subset(SERVERS, 0, 10) != deterministic_subset(SERVERS, 10, 10)


def test_size_equal_to_the_servers_gives_all_of_them() -> None:
    assert sorted(deterministic_subset(SERVERS, 41, 100)) == sorted(SERVERS)


def test_churn_when_a_server_leaves_is_a_reshuffle() -> None:
    # The book's algorithm reshuffles every round when the list changes: the
    # documented figure (docs/subsetting.md) is about 0.9 of connections moved.
    def slots(servers: list[str]) -> dict[tuple[int, int], str]:
        return {
            (c, k): s
            for c in range(300)
            for k, s in enumerate(deterministic_subset(servers, c, 10))
        }

    moved = remapped_fraction(slots(SERVERS), slots(SERVERS[:-1]))
    assert 0.95 < moved <= 1.0
    assert remapped_fraction(slots(SERVERS), slots(SERVERS[::-1])) == 0.0


def test_known_answer() -> None:
    # Pins the generator: any change to it is a change every client must share.
    servers = [f"10.0.0.{i}" for i in range(6)]
    assert deterministic_subset(servers, 0, 3) == ["10.0.0.4", "10.0.0.5", "10.0.0.1"]
    assert deterministic_subset(servers, 1, 3) == ["10.0.0.3", "10.0.0.2", "10.0.0.0"]
    assert deterministic_subset(servers, 2, 3, seed=7) == deterministic_subset(
        servers, 2, 3, seed=7
    )


def test_same_answer_in_other_processes() -> None:
    script = (
        "from balancekit import deterministic_subset\n"
        "s = [f'h{i}' for i in range(50)]\n"
        "print([deterministic_subset(s, c, 5, seed=9) for c in range(30)])\n"
    )
    servers = [f"h{i}" for i in range(50)]
    here = str([deterministic_subset(servers, c, 5, seed=9) for c in range(30)])
    assert outputs_under_hash_seeds(script) == {here}


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((["a", "b", "a"], 0, 1), {}, ValueError, r"repeat an id, got \['a'\]"),
        ((["a", "b"], 0, 0), {}, ValueError, "subset_size must be an int >= 1, got 0"),
        ((["a", "b"], 0, 3), {}, ValueError, "subset_size must be at most the 2 servers, got 3"),
        ((["a", "b"], -1, 1), {}, ValueError, "client_index must be an int >= 0, got -1"),
        ((["a", "b"], 0, 1), {"seed": -1}, ValueError, "seed must be an int"),
        ((["a", "b"], 0, 1), {"seed": 2**64}, ValueError, "seed must be an int"),
        (("ab", 0, 1), {}, TypeError, "servers must be an iterable"),
        ((None, 0, 1), {}, TypeError, "servers must be an iterable"),
        ((["a", 1], 0, 1), {}, TypeError, "non-empty str ids, got 1"),
        ((["a", ""], 0, 1), {}, TypeError, "non-empty str ids, got ''"),
        ((["a", "b"], True, 1), {}, TypeError, "client_index must be an int"),
        ((["a", "b"], 0, 1.0), {}, TypeError, "subset_size must be an int"),
        (([], 0, 1), {}, ValueError, "at most the 0 servers"),
    ],
)
def test_bad_input(
    args: tuple[object, ...], kwargs: dict[str, object], error: type, match: str
) -> None:
    servers = args[0]
    before = list(servers) if isinstance(servers, list) else servers
    with pytest.raises(error, match=match):
        deterministic_subset(*args, **kwargs)  # type: ignore[arg-type]
    assert servers == before  # the caller's list is not touched


DOC = Path(__file__).resolve().parents[1] / "docs" / "subsetting.md"


def test_the_page_runs_and_its_figures_hold(capsys: pytest.CaptureFixture[str]) -> None:
    failures, tried = doctest.testfile(str(DOC), module_relative=False)
    assert tried >= 4 and failures == 0
    text = DOC.read_text()
    script = text.split("The figures come from this script:\n\n```python\n")[1].split("```")[0]
    exec(compile(script, str(DOC), "exec"), {})
    moved, to_open = map(float, capsys.readouterr().out.split())
    assert f"| one server removed (100 → 99) | {moved:.3f} | {to_open:.3f} |" in text
