"""Node configuration files: strict parsing with named errors."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from tangle.errors import ConfigError
from tangle.node.config import load_node_config, network_document, parse_network
from tests.builders import committee, genesis, key

if TYPE_CHECKING:
    from pathlib import Path

    from tangle.ledger.ledger import Genesis
    from tangle.protocol.milestone import KeySet

_, KEY_SET = committee(3, 2)
GENESIS = genesis([(key(1), 1_000)], network_id=7)
NETWORK: dict[str, Any] = {
    "network_id": 7,
    "work_per_kib": 16,
    "min_output_amount": 1,
    "genesis": {
        "supply": GENESIS.supply,
        "allocations": [[a.hex(), v] for a, v in GENESIS.allocations],
    },
    "committee": {"threshold": 2, "public_keys": [k.hex() for k in KEY_SET.public_keys]},
}
NODE: dict[str, Any] = {
    "network": "network.json",
    "data_dir": "node-a",
    "p2p": {"host": "127.0.0.1", "port": 0, "peers": ["127.0.0.1:15601"]},
    "api": {"host": "127.0.0.1", "port": 0, "admin_token": "x" * 32},
    "prune": {"keep_milestones": 100, "every_s": 30},
}


def _write(tmp_path: Path, node: dict[str, Any], network: dict[str, Any] = NETWORK) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "network.json").write_text(json.dumps(network))
    path = tmp_path / "node.json"
    path.write_text(json.dumps(node))
    return path


def test_round_trip(tmp_path: Path) -> None:
    config = load_node_config(_write(tmp_path, NODE))
    assert config.network.genesis == GENESIS
    assert config.network.key_set == KEY_SET
    assert network_document(config.network) == NETWORK
    assert config.data_dir == tmp_path / "node-a"
    assert [str(p) for p in config.peers] == ["127.0.0.1:15601"]
    assert parse_network(network_document(config.network)) == config.network


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda n: n.update(extra=1), "unknown keys"),
        (lambda n: n["p2p"].update(port=70000), "not a TCP port"),
        (lambda n: n["p2p"].update(peers=["nohost"]), "host:port"),
        (lambda n: n["api"].update(admin_token="short"), "at least 16"),
        (lambda n: n["prune"].update(keep_milestones=3), "must exceed"),
        (lambda n: n["prune"].update(every_s=True), "a number"),
        (lambda n: n.pop("data_dir"), "missing 'data_dir'"),
    ],
)
def test_bad_node_files(tmp_path: Path, change: Any, match: str) -> None:
    node = json.loads(json.dumps(NODE))
    change(node)
    with pytest.raises(ConfigError, match=match):
        load_node_config(_write(tmp_path, node))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda n: n["genesis"].update(supply=999), "sum to the supply"),
        (lambda n: n["committee"].update(threshold=5), "threshold"),
        (lambda n: n["committee"].update(public_keys=["zz"]), "not hex"),
        (lambda n: n.update(work_per_kib=0), "work_per_kib"),
        (lambda n: n.update(registry={"quarantine_threshold": 0}), "quarantine_threshold"),
        (lambda n: n.update(registry={"maker_endorses": 1}), "maker_endorses"),
        (lambda n: n.update(registry={"quorum": 2}), "unknown keys"),
    ],
)
def test_bad_network_files(tmp_path: Path, change: Any, match: str) -> None:
    network = json.loads(json.dumps(NETWORK))
    change(network)
    with pytest.raises(ConfigError, match=match):
        load_node_config(_write(tmp_path, NODE, network))


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_node_config(tmp_path / "absent.json")
    (tmp_path / "node.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not JSON"):
        load_node_config(tmp_path / "node.json")


def test_a_node_starts_from_a_snapshot_of_its_network_only(tmp_path: Path) -> None:
    from tangle.ledger.committee import KeySchedule
    from tangle.service import start_from_snapshot
    from tangle.storage.snapshot import export_snapshot
    from tangle.storage.storage import Storage

    def snapshot_of(g: Genesis, key_set: KeySet, name: str) -> Path:
        with Storage.create(tmp_path / f"{name}.db", g) as source:
            source.record_key_schedule(KeySchedule(entries=((1, key_set),)))
            export_snapshot(source, tmp_path / f"{name}.snap")
        return tmp_path / f"{name}.snap"

    config = load_node_config(_write(tmp_path, NODE))
    ours = snapshot_of(GENESIS, KEY_SET, "ours")
    start_from_snapshot(config, ours)
    assert (config.data_dir / "node.db").exists()
    with pytest.raises(ConfigError, match="exists"):
        start_from_snapshot(config, ours)
    other_network = snapshot_of(genesis([(key(1), 1_000)], network_id=8), KEY_SET, "other")
    other_committee = snapshot_of(GENESIS, committee(3, 2, offset=2000)[1], "committee")
    for other in (other_network, other_committee):
        fresh = load_node_config(_write(tmp_path / "second", {**NODE, "data_dir": "b"}))
        with pytest.raises(ConfigError, match="another network"):
            start_from_snapshot(fresh, other)


def test_the_registry_policy_is_the_networks(tmp_path: Path) -> None:
    network = json.loads(json.dumps(NETWORK))
    network["registry"] = {"operator_endorsements": 2, "quarantine_threshold": 3}
    config = load_node_config(_write(tmp_path, NODE, network))
    rules = config.network.params.registry_rules
    assert (rules.maker_endorses, rules.operator_endorsements, rules.quarantine_threshold) == (
        True,
        2,
        3,
    )
    assert parse_network(network_document(config.network)) == config.network
