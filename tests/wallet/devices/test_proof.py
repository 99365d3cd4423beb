"""Proof bundles: valid ones verify offline; every broken link is named; committee rotations."""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

import pytest

from tangle.ledger.committee import KeySchedule
from tangle.ledger.registry import QuarantineState, restore_registry
from tangle.protocol.device import DeviceStatus
from tangle.protocol.ids import PublicKey
from tangle.protocol.merkle import MerklePath
from tangle.protocol.milestone import KeySet, encode_milestone
from tangle.protocol.payload import TaggedData
from tangle.protocol.proof_bundle import KEY_PREFIX, ProofBundle
from wallet.devices.batch import anchor_payload
from wallet.devices.errors import (
    AnchorPayloadError,
    BatchPathError,
    DeviceNotActiveError,
    DeviceProofError,
    InclusionPathError,
    MilestoneSignatureError,
    ReadingSignatureError,
    RegistryPathError,
)
from wallet.devices.proof import build_bundle, verify_bundle

from ._chain import build_chain, committee, entry, schedule_of
from ._support import NETWORK

if TYPE_CHECKING:
    from collections.abc import Callable

SIGNERS, KEY_SET = committee(0)
SCHEDULE = schedule_of(KEY_SET)
CHAIN = build_chain(signers=SIGNERS, key_set=KEY_SET)


def test_every_reading_of_the_batch_is_proved() -> None:
    for index in range(len(CHAIN.batch.readings)):
        proved = verify_bundle(CHAIN.bundle(index), SCHEDULE)
        assert proved.anchor.batch_root == CHAIN.batch.root
        assert proved.device.device_id == proved.reading.reading.device_id
        assert proved.milestone.essence.index == 5


def test_a_proof_is_small_and_quick_to_check() -> None:
    bundle = CHAIN.bundle(0)
    assert bundle.size < 2048
    began = time.perf_counter()
    for _ in range(20):
        verify_bundle(bundle, SCHEDULE)
    assert (time.perf_counter() - began) / 20 < 0.02  # generous on a shared machine


def _flip(data: bytes, i: int) -> bytes:
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


def _flip_path(path: MerklePath, i: int) -> MerklePath:
    joined = _flip(b"".join(path.siblings), i)
    siblings = tuple(joined[k : k + 32] for k in range(0, len(joined), 32))
    return dataclasses.replace(path, siblings=siblings)


def _path_bytes(path: MerklePath) -> int:
    return 32 * len(path.siblings)


LINKS: list[tuple[str, type[DeviceProofError]]] = [
    ("reading", ReadingSignatureError),
    ("batch_path", BatchPathError),
    ("anchor", InclusionPathError),
    ("inclusion_path", InclusionPathError),
    ("milestone", MilestoneSignatureError),
    ("registry_entry", RegistryPathError),
    ("registry_path", RegistryPathError),
]


@pytest.mark.parametrize(("link", "error"), LINKS)
def test_flipping_any_byte_of_a_link_fails_with_its_name(
    link: str, error: type[DeviceProofError]
) -> None:
    bundle = CHAIN.bundle(5)
    value = getattr(bundle, link)
    flip: Callable[[int], object]
    if isinstance(value, MerklePath):
        size, flip = _path_bytes(value), lambda i: _flip_path(value, i)
    else:
        size, flip = len(value), lambda i: _flip(value, i)
    assert size > 0
    for i in range(size):
        broken = dataclasses.replace(bundle, **{link: flip(i)})
        with pytest.raises(error) as caught:
            verify_bundle(broken, SCHEDULE)
        assert caught.value.link in str(caught.value)


@pytest.mark.parametrize(
    ("link", "error"),
    [
        ("batch_path", BatchPathError),
        ("inclusion_path", InclusionPathError),
        ("registry_path", RegistryPathError),
    ],
)
def test_a_path_moved_to_another_position_fails(link: str, error: type[Exception]) -> None:
    bundle = CHAIN.bundle(5)
    path: MerklePath = getattr(bundle, link)
    moved = MerklePath(index=(path.index + 1) % path.size, size=path.size, siblings=path.siblings)
    with pytest.raises(error):
        verify_bundle(dataclasses.replace(bundle, **{link: moved}), SCHEDULE)


def test_another_readings_bytes_fail_at_the_batch_path() -> None:
    bundle = CHAIN.bundle(5)
    other = CHAIN.batch.readings[1]  # same device, signed, but elsewhere in the batch
    assert CHAIN.batch.readings[5][:41] == other[:41]
    with pytest.raises(BatchPathError):
        verify_bundle(dataclasses.replace(bundle, reading=other), SCHEDULE)


@pytest.mark.parametrize(
    "payload",
    [
        TaggedData(tag=b"sensor", data=b"nothing"),
        TaggedData(tag=b"tanglepay/anchor", data=bytes(45)),
        anchor_payload(dataclasses.replace(CHAIN.batch.anchor, network_id=NETWORK + 1)),
    ],
)
def test_an_included_message_that_is_no_anchor_fails_at_the_anchor(payload: TaggedData) -> None:
    chain = build_chain(signers=SIGNERS, key_set=KEY_SET, payload=payload)
    with pytest.raises(AnchorPayloadError):
        verify_bundle(chain.bundle(0), SCHEDULE)


def test_an_anchor_of_another_batch_fails_at_the_batch_path() -> None:
    other = build_chain(signers=SIGNERS, key_set=KEY_SET, readings=2)
    chain = build_chain(
        signers=SIGNERS, key_set=KEY_SET, payload=anchor_payload(other.batch.anchor)
    )
    with pytest.raises(BatchPathError):
        verify_bundle(chain.bundle(0), SCHEDULE)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"status": DeviceStatus.SUSPENDED}, "suspended"),
        ({"status": DeviceStatus.REVOKED}, "revoked"),
        (
            {
                "quarantine": QuarantineState(
                    reason=1, evidence_hash=bytes(32), since=3, expires_after=9
                )
            },
            "quarantined",
        ),
    ],
)
def test_a_device_not_active_at_the_milestone_fails(change: dict[str, object], why: str) -> None:
    entries = [entry(d) for d in range(4)]
    entries[0] = dataclasses.replace(entries[0], **change)  # type: ignore[arg-type]
    registry = restore_registry(entries, [])
    chain = build_chain(signers=SIGNERS, key_set=KEY_SET, registry=registry)
    with pytest.raises(DeviceNotActiveError, match=why):
        verify_bundle(chain.bundle(0), SCHEDULE)
    verify_bundle(chain.bundle(1), SCHEDULE)  # device 1 is active


def test_an_expired_quarantine_does_not_stop_a_proof() -> None:
    entries = [entry(d) for d in range(4)]
    quarantine = QuarantineState(reason=1, evidence_hash=bytes(32), since=1, expires_after=4)
    entries[0] = dataclasses.replace(entries[0], quarantine=quarantine)
    chain = build_chain(signers=SIGNERS, key_set=KEY_SET, registry=restore_registry(entries, []))
    verify_bundle(chain.bundle(0), SCHEDULE)


def test_a_reading_signed_by_a_rotated_out_key_fails_at_the_reading() -> None:
    entries = [entry(d) for d in range(4)]
    entries[0] = dataclasses.replace(entries[0], key=entry(9).key)  # rotated to another key
    chain = build_chain(signers=SIGNERS, key_set=KEY_SET, registry=restore_registry(entries, []))
    with pytest.raises(ReadingSignatureError):
        verify_bundle(chain.bundle(0), SCHEDULE)


def test_proofs_across_a_committee_rotation_verify_against_the_right_key_set() -> None:
    old_signers, old = committee(0)
    new_signers, new = committee(50, size=4, threshold=2)
    schedule = KeySchedule(entries=((1, old), (10, new)))
    before = build_chain(index=9, signers=old_signers, key_set=old)
    after = build_chain(index=10, signers=new_signers, key_set=new)
    verify_bundle(before.bundle(0), schedule)
    verify_bundle(after.bundle(0), schedule)
    wrong_after = build_chain(index=10, signers=old_signers, key_set=old)
    wrong_before = build_chain(index=9, signers=new_signers, key_set=new)
    for chain in (wrong_after, wrong_before):
        with pytest.raises(MilestoneSignatureError, match="not in the committee"):
            verify_bundle(chain.bundle(0), schedule)
    with pytest.raises(MilestoneSignatureError, match="not in the committee"):
        verify_bundle(after.bundle(0), SCHEDULE)  # a verifier that missed the rotation


def test_too_few_committee_signatures_fail() -> None:
    short = dataclasses.replace(
        CHAIN.milestone, signatures=CHAIN.milestone.signatures[: KEY_SET.threshold - 1]
    )
    chain = dataclasses.replace(CHAIN, milestone=short)
    with pytest.raises(MilestoneSignatureError, match="needs 3"):
        verify_bundle(chain.bundle(0), SCHEDULE)


def test_build_bundle_is_what_the_chain_holds() -> None:
    bundle = build_bundle(
        batch=CHAIN.batch,
        index=2,
        anchor=CHAIN.anchor,
        referenced=reversed(CHAIN.referenced),  # any order: the root sorts the ids
        milestone=CHAIN.milestone,
        registry=CHAIN.registry,
    )
    assert isinstance(bundle, ProofBundle)
    assert bundle.reading == CHAIN.batch.readings[2]
    verify_bundle(bundle, SCHEDULE)


def test_the_milestone_link_names_signers_by_key_prefix() -> None:
    bundle = CHAIN.bundle(0)
    signatures = CHAIN.milestone.signatures
    # 24 bytes a signer fewer than the milestone's payload form, and every one still checked
    assert len(bundle.milestone) == len(encode_milestone(CHAIN.milestone)) - 24 * len(signatures)
    # a verifier whose committee has two keys under one signer's prefix cannot tell which signed
    twin = PublicKey(signatures[0].public_key[:KEY_PREFIX] + bytes(32 - KEY_PREFIX))
    keys = tuple(sorted((*KEY_SET.public_keys, twin)))
    crowded = schedule_of(KeySet(threshold=KEY_SET.threshold, public_keys=keys))
    with pytest.raises(MilestoneSignatureError, match="names 2 committee keys"):
        verify_bundle(bundle, crowded)
    # only the key set in force at the milestone's index names signers: a twin in another
    # epoch of the schedule does not crowd the prefix
    later = KeySet(threshold=1, public_keys=(twin,))
    for schedule in (
        KeySchedule(entries=((1, KEY_SET), (CHAIN.milestone.essence.index + 1, later))),
        KeySchedule(entries=((1, later), (CHAIN.milestone.essence.index, KEY_SET))),
    ):
        verify_bundle(bundle, schedule)
    for broken, why in [
        (b"", "empty"),
        (bundle.milestone[:-1] + b"\x00", "cannot hold 0"),
        (bundle.milestone[:-1] + b"\xff", "cannot hold 255"),
        (bundle.milestone[:-1] + bytes([len(signatures) - 1]), "does not decode"),
    ]:
        with pytest.raises(MilestoneSignatureError, match=why):
            verify_bundle(dataclasses.replace(bundle, milestone=broken), SCHEDULE)
