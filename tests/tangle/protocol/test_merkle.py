"""RFC 6962 style Merkle tree hash over BLAKE2b-256."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tangle.protocol.ids import blake2b_256
from tangle.protocol.merkle import merkle_root


def _reference(leaves: list[bytes]) -> bytes:
    # RFC 6962 section 2.1.1's iterative description: hash leaves, then combine levels, carrying
    # an odd last node up unchanged. Equal to the recursive definition for every n.
    if not leaves:
        return blake2b_256()
    level = [blake2b_256(b"\x00", leaf) for leaf in leaves]
    while len(level) > 1:
        nxt = [blake2b_256(b"\x01", level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def test_small_trees_by_hand() -> None:
    a, b, c = b"a" * 32, b"b" * 32, b"c" * 32
    la, lb, lc = (blake2b_256(b"\x00", x) for x in (a, b, c))
    assert merkle_root([]) == blake2b_256()
    assert merkle_root([a]) == la
    assert merkle_root([a, b]) == blake2b_256(b"\x01", la, lb)
    assert merkle_root([a, b, c]) == blake2b_256(b"\x01", blake2b_256(b"\x01", la, lb), lc)


@given(st.lists(st.binary(min_size=32, max_size=32), max_size=70))
def test_matches_iterative_reference(leaves: list[bytes]) -> None:
    assert merkle_root(leaves) == _reference(leaves)


@given(st.lists(st.binary(min_size=32, max_size=32), min_size=2, max_size=20, unique=True))
def test_order_matters(leaves: list[bytes]) -> None:
    assert merkle_root(leaves) != merkle_root(leaves[::-1])
