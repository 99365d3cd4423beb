"""Published vectors for our primitives, and the protocol vectors this suite exports.

`tests/vectors/protocol.json` holds message encodings, ids, work roots and nonces, Merkle roots
and a ledger state hash, produced by the code under test, for a second implementation (device
firmware, say) to check itself against. The test regenerates the data and requires it to equal
the file, so the wire format cannot change unnoticed; run with `TANGLEPAY_WRITE_VECTORS=1` to
rewrite the file after a deliberate protocol change.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from coordinator.signers import KeySigner, sign_milestone
from tangle.ledger.ledger import genesis_state
from tangle.protocol.ids import MerkleRoot, MessageId, MilestoneId, blake2b_256
from tangle.protocol.merkle import merkle_root
from tangle.protocol.message import check_message, decode_message, encode_message, prepare
from tangle.protocol.milestone import KeySet, KeySetChange, MilestoneEssence
from tangle.protocol.payload import Payload, TaggedData
from tangle.protocol.pow import search_reference, work_value
from tangle.protocol.signature import is_valid
from tests.builders import address, genesis, key, transfer

VECTORS = Path(__file__).resolve().parents[2] / "vectors"
NETWORK = 0x7470646576
WORK_PER_KIB = 1 << 12
PARENTS = (MessageId(b"\x11" * 32), MessageId(b"\x22" * 32))


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


@pytest.mark.parametrize("case", _load("rfc8032_ed25519.json")["cases"], ids=lambda c: c["name"])
def test_rfc8032_signatures(case: dict[str, str]) -> None:
    public_key = bytes.fromhex(case["public_key"])
    message = bytes.fromhex(case["message"])
    signature = bytes.fromhex(case["signature"])
    signer = KeySigner(bytes.fromhex(case["secret_key"]))
    assert signer.public_key == public_key
    assert signer.sign(message) == signature
    assert is_valid(public_key, message, signature)
    forged = bytearray(signature)
    forged[0] ^= 1
    assert not is_valid(public_key, message, bytes(forged))
    assert not is_valid(public_key, message + b"\x00", signature)


def test_rfc7693_blake2b() -> None:
    expected = _load("rfc8032_ed25519.json")["blake2b_512_abc"]["digest"]
    assert hashlib.blake2b(b"abc").hexdigest() == expected


def _message_case(name: str, payload: Payload, parents: tuple[MessageId, ...]) -> dict[str, Any]:
    unsent = prepare(NETWORK, payload, WORK_PER_KIB)
    nonce = search_reference(unsent.root, unsent.target, 0, 1 << 22)
    assert nonce is not None
    raw = encode_message(unsent.attach(parents, nonce))
    parsed = decode_message(raw)
    check_message(parsed, NETWORK, WORK_PER_KIB)
    return {
        "name": name,
        "message": raw.hex(),
        "id": parsed.id.hex(),
        "work_root": parsed.root.hex(),
        "size_bound": parsed.size_bound,
        "target": unsent.target,
        "nonce": nonce,
        "work_value": work_value(parsed.root, nonce),
    }


def _protocol_vectors() -> dict[str, Any]:
    alice, bob = key(1), key(2)
    g = genesis([(alice, 1_000_000), (bob, 500_000)], network_id=NETWORK)
    oid = next(iter(g.outputs()))
    tx = transfer(
        [(oid, alice)],
        [(address(bob), 250_000), (address(alice), 750_000)],
        network_id=NETWORK,
        memo=b"invoice 17",
    )
    committee = sorted((KeySigner(bytes([i]) * 32) for i in (1, 2, 3)), key=lambda s: s.public_key)
    key_set = KeySet(threshold=2, public_keys=tuple(s.public_key for s in committee))
    essence = MilestoneEssence(
        network_id=NETWORK,
        index=1,
        timestamp_ms=1_763_683_200_000,
        previous=MilestoneId(bytes(32)),
        parents=PARENTS,
        applied_merkle_root=merkle_root([PARENTS[0]]),
        inclusion_root=merkle_root(PARENTS),
        registry_root=merkle_root([]),
        key_set_change=KeySetChange(activation_index=10, key_set=key_set),
    )
    milestone = sign_milestone(essence, committee[:2], key_set)
    leaves = [bytes([i]) * 32 for i in range(1, 6)]
    return {
        "about": (
            "Produced by tests/tangle/protocol/test_vectors.py; "
            "see docs/PROTOCOL.md for every layout."
        ),
        "network_id": NETWORK,
        "work_per_kib": WORK_PER_KIB,
        "messages": [
            _message_case("tagged data", TaggedData(tag=b"sensor/42", data=b"21.5C"), PARENTS[:1]),
            _message_case("transaction", tx, PARENTS),
            _message_case("milestone", milestone, PARENTS),
        ],
        "transaction": {
            "id": tx.id.hex(),
            "signing_message": (b"tanglepay/transaction/v1" + tx.id).hex(),
        },
        "merkle": [
            {"leaves": [leaf.hex() for leaf in leaves[:n]], "root": merkle_root(leaves[:n]).hex()}
            for n in range(len(leaves) + 1)
        ],
        "genesis": {
            "allocations": [[a.hex(), amount] for a, amount in g.allocations],
            "output_ids": [o.hex() for o in g.outputs()],
            "ledger_state_hash": genesis_state(g).state_hash.hex(),
        },
        "address_of_rfc8032_test1": blake2b_256(
            bytes.fromhex(_load("rfc8032_ed25519.json")["cases"][0]["public_key"])
        ).hex(),
    }


def test_protocol_vectors_are_stable() -> None:
    produced = _protocol_vectors()
    path = VECTORS / "protocol.json"
    if os.environ.get("TANGLEPAY_WRITE_VECTORS") == "1":
        path.write_text(json.dumps(produced, indent=2) + "\n")
    assert json.loads(path.read_text()) == produced
    assert MerkleRoot(bytes.fromhex(produced["merkle"][0]["root"])) == blake2b_256()
