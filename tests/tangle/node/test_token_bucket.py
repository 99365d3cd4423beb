"""`ClientBuckets` stays within `max_clients` whatever the clients do: a flood of new
addresses, each spending one token, drops the client charged longest ago, one a take, and the
clients still held keep their debt."""

from __future__ import annotations

from tangle.node.token_bucket import ClientBuckets


def test_a_flood_of_new_clients_keeps_the_table_at_its_bound() -> None:
    buckets = ClientBuckets(per_minute=2, max_clients=100)
    assert buckets.take("steady", 0.0) == 0.0
    assert buckets.take("steady", 0.0) == 0.0
    for n in range(10_000):  # none of them full after its take: the old code kept them all
        assert buckets.take(f"10.0.{n // 256}.{n % 256}", 1.0) == 0.0
        assert len(buckets._buckets) <= 100
    assert "steady" not in buckets._buckets  # charged longest ago: dropped first


def test_a_client_in_use_keeps_its_debt() -> None:
    buckets = ClientBuckets(per_minute=1, max_clients=3)
    assert buckets.take("a", 0.0) == 0.0
    for n in range(50):
        buckets.take(f"new{n}", 0.0)
        assert buckets.take("a", 0.0) > 0.0  # "a" has no token left and is not forgotten
