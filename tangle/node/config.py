"""Configuration files of nodes: the network they belong to and how each node runs.

Two JSON documents, validated strictly (unknown keys, wrong types and out-of-range values raise
`ConfigError` naming the key):

`network.json`, shared by every node of a network:
```
{"network_id": int, "work_per_kib": int, "min_output_amount": int,
 "genesis": {"supply": int, "allocations": [[address hex, amount], ...]},
 "committee": {"threshold": int, "public_keys": [hex, ...]},
 "registry": {"maker_endorses": bool, "operator_endorsements": int,      (optional: defaults
              "authority_endorsements": int, "quarantine_threshold": int}  of `RegistryRules`)}
```
`node.json`, one per node:
```
{"network": path to network.json (relative to this file),
 "data_dir": path, "p2p": {"host": str, "port": int, "peers": ["host:port", ...]},
 "api": {"host": str, "port": int, "admin_token": str | null},
 "prune": {"keep_milestones": int, "every_s": float}}
```
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tangle.errors import ConfigError, TangleError
from tangle.ledger.committee import KeySchedule
from tangle.ledger.ledger import Genesis
from tangle.ledger.registry_rules import RegistryRules
from tangle.protocol.ids import Address, PublicKey
from tangle.protocol.milestone import KeySet

from .core import Parameters


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkSpec:
    """What every node of a network must agree on."""

    params: Parameters
    """Network id, proof-of-work difficulty, storage deposit."""
    genesis: Genesis
    """The supply and its initial allocations."""
    key_set: KeySet
    """The committee at milestone 1 (later rotations come in milestones)."""

    @property
    def schedule(self) -> KeySchedule:
        return KeySchedule(entries=((1, self.key_set),))


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """A host and port."""

    host: str
    """Name or address."""
    port: int
    """TCP port (0: any free port)."""

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeConfig:
    """How one node runs."""

    network: NetworkSpec
    """The network it joins."""
    data_dir: Path
    """Where its database lives."""
    p2p: Endpoint
    """Where it listens for peers."""
    peers: tuple[Endpoint, ...]
    """Peers it connects to."""
    api: Endpoint
    """Where it serves the HTTP API."""
    admin_token: str | None
    """Bearer token of the admin endpoints (None: admin endpoints disabled)."""
    keep_milestones: int
    """Pruning keeps messages of this many recent milestones."""
    prune_every_s: float
    """Seconds between pruning runs."""


def _take(doc: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in doc:
        raise ConfigError(f"{where}: missing {key!r}")
    value = doc[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{where}.{key}: expected an integer, got {value!r}")
    if kind is float and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ConfigError(f"{where}.{key}: expected a number, got {value!r}")
    if kind not in (int, float) and not isinstance(value, kind):
        raise ConfigError(f"{where}.{key}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def _only(doc: dict[str, Any], keys: set[str], where: str) -> None:
    unknown = set(doc) - keys
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected an object")
    return value


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return _object(json.loads(path.read_text()), str(path))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None


def parse_network(doc: dict[str, Any], where: str = "network") -> NetworkSpec:
    _only(
        doc,
        {"network_id", "work_per_kib", "min_output_amount", "genesis", "committee", "registry"},
        where,
    )
    try:
        params = Parameters(
            network_id=_take(doc, "network_id", int, where),
            work_per_kib=_take(doc, "work_per_kib", int, where),
            min_output_amount=_take(doc, "min_output_amount", int, where),
            registry_rules=_registry_rules(doc.get("registry", {}), f"{where}.registry"),
        )
        g = _object(_take(doc, "genesis", dict, where), f"{where}.genesis")
        _only(g, {"supply", "allocations"}, f"{where}.genesis")
        allocations = []
        for i, item in enumerate(_take(g, "allocations", list, f"{where}.genesis")):
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[1], int)):
                raise ConfigError(f"{where}.genesis.allocations[{i}]: expected [address, amount]")
            allocations.append((Address.from_hex(str(item[0])), item[1]))
        genesis = Genesis(
            network_id=params.network_id,
            supply=_take(g, "supply", int, f"{where}.genesis"),
            allocations=tuple(allocations),
        )
        c = _object(_take(doc, "committee", dict, where), f"{where}.committee")
        _only(c, {"threshold", "public_keys"}, f"{where}.committee")
        keys = tuple(PublicKey.from_hex(str(k)) for k in _take(c, "public_keys", list, where))
        key_set = KeySet(threshold=_take(c, "threshold", int, where), public_keys=keys)
    except ConfigError:
        raise
    except TangleError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    return NetworkSpec(params=params, genesis=genesis, key_set=key_set)


def network_document(spec: NetworkSpec) -> dict[str, Any]:
    """The JSON document of `spec` (what `parse_network` reads)."""
    document: dict[str, Any] = {
        "network_id": spec.params.network_id,
        "work_per_kib": spec.params.work_per_kib,
        "min_output_amount": spec.params.min_output_amount,
        "genesis": {
            "supply": spec.genesis.supply,
            "allocations": [[a.hex(), amount] for a, amount in spec.genesis.allocations],
        },
        "committee": {
            "threshold": spec.key_set.threshold,
            "public_keys": [k.hex() for k in spec.key_set.public_keys],
        },
    }
    if spec.params.registry_rules != RegistryRules():
        document["registry"] = asdict(spec.params.registry_rules)
    return document


def _registry_rules(value: Any, where: str) -> RegistryRules:
    doc = _object(value, where)
    default = RegistryRules()
    _only(doc, set(asdict(default)), where)

    def take(key: str, kind: type) -> Any:
        return _take(doc, key, kind, where) if key in doc else getattr(default, key)

    return RegistryRules(
        maker_endorses=take("maker_endorses", bool),
        operator_endorsements=take("operator_endorsements", int),
        authority_endorsements=take("authority_endorsements", int),
        quarantine_threshold=take("quarantine_threshold", int),
    )


def _endpoint(text: Any, where: str) -> Endpoint:
    if not isinstance(text, str) or text.count(":") != 1:
        raise ConfigError(f"{where}: expected 'host:port', got {text!r}")
    host, port = text.split(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{where}: expected 'host:port', got {text!r}")
    return Endpoint(host=host, port=int(port))


def _listen(doc: dict[str, Any], where: str, extra: set[str]) -> Endpoint:
    _only(doc, {"host", "port", *extra}, where)
    port = _take(doc, "port", int, where)
    if not 0 <= port < 65536:
        raise ConfigError(f"{where}.port: {port} is not a TCP port")
    return Endpoint(host=_take(doc, "host", str, where), port=port)


def load_node_config(path: str | Path) -> NodeConfig:
    """Read a node's configuration and the network file it names."""
    path = Path(path)
    doc = _read_json(path)
    where = str(path)
    _only(doc, {"network", "data_dir", "p2p", "api", "prune"}, where)
    network = parse_network(
        _read_json(path.parent / _take(doc, "network", str, where)), "network.json"
    )
    p2p = _object(_take(doc, "p2p", dict, where), f"{where}.p2p")
    api = _object(_take(doc, "api", dict, where), f"{where}.api")
    prune = _object(_take(doc, "prune", dict, where), f"{where}.prune")
    _only(prune, {"keep_milestones", "every_s"}, f"{where}.prune")
    token = api.get("admin_token")
    if token is not None and (not isinstance(token, str) or len(token) < 16):
        raise ConfigError(f"{where}.api.admin_token: use a string of at least 16 characters")
    keep = _take(prune, "keep_milestones", int, f"{where}.prune")
    below_max_depth = network.params.tip_rules.below_max_depth
    if keep <= below_max_depth:
        raise ConfigError(f"{where}.prune.keep_milestones: must exceed {below_max_depth}")
    every = float(_take(prune, "every_s", float, f"{where}.prune"))
    if every <= 0:
        raise ConfigError(f"{where}.prune.every_s: must be positive")
    peers = _take(p2p, "peers", list, f"{where}.p2p")
    return NodeConfig(
        network=network,
        data_dir=path.parent / _take(doc, "data_dir", str, where),
        p2p=_listen(p2p, f"{where}.p2p", {"peers"}),
        peers=tuple(_endpoint(p, f"{where}.p2p.peers[{i}]") for i, p in enumerate(peers)),
        api=_listen(api, f"{where}.api", {"admin_token"}),
        admin_token=token,
        keep_milestones=keep,
        prune_every_s=every,
    )
