"""Bars: the HPMN bars a subscriber (by keyed IMSI hash); its later usage comes back SEVERE
BARRED and is not paid, also after the desk restarts from its store; bars not signed by the
agreement's party, of another agreement, or past the bound are refused by name."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.roaming.acknowledgement import RecordReturn, ReturnCode, Severity
from payments.roaming.bars import BAR_GRACE_S, Bar, BarList, SignedBar, anchor_payload, sign_bar
from payments.roaming.batch import seal
from payments.roaming.desk import CarrierDesk
from payments.roaming.errors import BackdatedBarError, BarError, BatchError
from payments.roaming.store import RoamingStore
from payments.roaming.validation import Validator
from tanglepay.cli import main as tanglepay
from tests.payments.roaming.settle_support import (
    AGREEMENT,
    HASHER,
    HOME,
    HOME_KEY,
    MALLORY_KEY,
    NOW,
    T0,
    VISITED,
    VISITED_KEY,
    agreement,
    rated,
    record,
    signed,
)

if TYPE_CHECKING:
    from pathlib import Path

IMSI = "262010000000001"


def bar(since: int, **changes: object) -> Bar:
    fields: dict[str, object] = {
        "agreement": AGREEMENT.hash,
        "hpmn": HOME,
        "imsi_hash": HASHER.imsi(IMSI),
        "since": since,
    }
    fields.update(changes)
    return Bar(**fields)  # type: ignore[arg-type]


def test_usage_after_a_bar_is_returned_and_not_paid_also_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "hpmn.db"
    records = (rated(record(up=10, start=T0)), rated(record(up=10, start=T0 + 100)))
    with RoamingStore(path) as store:
        desk = CarrierDesk(store, signed(AGREEMENT), HOME_KEY, window_capacity=100)
        assert desk.bar(sign_bar(bar(T0 + 50), HOME_KEY), NOW)
        assert not desk.bar(sign_bar(bar(T0 + 60), HOME_KEY), NOW)  # the earlier bar holds
        ack = desk.receive_batch(seal(AGREEMENT, VISITED_KEY, records, sequence=1, now=NOW), NOW)
        assert ack.ack.returns == (
            RecordReturn(index=1, severity=Severity.SEVERE, code=ReturnCode.BARRED),
        )
        assert ack.ack.accepted_amount == records[0].charge
    with RoamingStore(path) as store:
        desk = CarrierDesk(store, signed(AGREEMENT), HOME_KEY, window_capacity=100)
        later = (rated(record(up=11, start=T0 + 200)),)
        ack = desk.receive_batch(seal(AGREEMENT, VISITED_KEY, later, sequence=2, now=NOW), NOW)
        assert ack.ack.returns[0].code is ReturnCode.BARRED
        assert [b.bar.since for b in store.bars()] == [T0 + 50]


def test_bars_are_checked_and_bounded() -> None:
    bars = BarList(AGREEMENT, capacity=1)
    with pytest.raises(BarError, match="signed"):
        bars.add(sign_bar(bar(T0), VISITED_KEY), NOW)  # VISITED's key for HOME's bar
    with pytest.raises(BarError, match="another agreement"):
        bars.add(sign_bar(bar(T0, agreement=bytes(32)), HOME_KEY), NOW)
    assert bars.add(sign_bar(bar(T0), HOME_KEY), NOW)
    with pytest.raises(BarError, match="more than"):
        bars.add(sign_bar(bar(T0, imsi_hash=HASHER.imsi("262019999999999")), HOME_KEY), NOW)
    assert bars.barred(record(start=T0, recipient=HOME))
    assert not bars.barred(record(start=T0 - 1, recipient=HOME))
    s = sign_bar(bar(T0), HOME_KEY)
    assert SignedBar.decode(s.encode()) == s
    assert IMSI.encode() not in anchor_payload(s).data


@given(st.binary(max_size=200))
def test_hostile_bar_bytes_raise_only_bar_errors(data: bytes) -> None:
    with pytest.raises(BarError):
        SignedBar.decode(data)


def test_a_desk_refuses_a_key_of_neither_party_and_a_bar_of_a_stranger(tmp_path: Path) -> None:
    with RoamingStore(tmp_path / "x.db") as store:
        with pytest.raises(BatchError, match="neither party"):
            CarrierDesk(store, signed(AGREEMENT), MALLORY_KEY)
        desk = CarrierDesk(store, signed(AGREEMENT), HOME_KEY, window_capacity=10)
        with pytest.raises(BarError, match="not a party"):
            desk.bar(sign_bar(bar(T0, hpmn="GBRCC"), MALLORY_KEY), NOW)


def test_a_backdated_bar_is_refused_and_usage_served_before_it_arrived_stays_paid(
    tmp_path: Path,
) -> None:
    """A hostile HPMN signs a bar from second 0: the VPMN refuses it by name (it would make the
    usage it already served unpaid), and so does the HPMN's own desk, whose validator then
    accepts the usage from before the bar arrived; a bar from the second it arrives counts."""
    records = (rated(record(up=10, start=T0)), rated(record(up=10, start=NOW)))
    with RoamingStore(tmp_path / "vpmn.db") as store:
        vpmn = CarrierDesk(store, signed(AGREEMENT), VISITED_KEY, window_capacity=100)
        with pytest.raises(BackdatedBarError) as refused:
            vpmn.bar(sign_bar(bar(0), HOME_KEY), NOW)
        assert (refused.value.since, refused.value.received) == (0, NOW)
        assert store.bars() == []
        gate = BarList.restored(AGREEMENT, store.bars(), HOME)
        assert gate.admit(enumerate(records)) == (list(enumerate(records)), [])
    with RoamingStore(tmp_path / "hpmn.db") as store:
        hpmn = CarrierDesk(store, signed(AGREEMENT), HOME_KEY, window_capacity=100)
        with pytest.raises(BackdatedBarError):
            hpmn.bar(sign_bar(bar(0), HOME_KEY), NOW)
        assert hpmn.bar(sign_bar(bar(NOW - BAR_GRACE_S // 3), HOME_KEY), NOW)  # within the grace
        ack = hpmn.receive_batch(seal(AGREEMENT, VISITED_KEY, records, sequence=1, now=NOW), NOW)
        assert [(r.index, r.code) for r in ack.ack.returns] == [(1, ReturnCode.BARRED)]


def test_a_later_bar_never_moves_the_held_one_earlier(tmp_path: Path) -> None:
    bars = BarList(AGREEMENT)
    assert bars.add(sign_bar(bar(NOW + 500), HOME_KEY), NOW)
    assert not bars.add(sign_bar(bar(NOW), HOME_KEY), NOW)
    assert not bars.barred(record(start=NOW + 499))
    assert bars.barred(record(start=NOW + 500))
    with RoamingStore(tmp_path / "hpmn.db") as store:
        desk = CarrierDesk(store, signed(AGREEMENT), HOME_KEY, window_capacity=100)
        assert desk.bar(sign_bar(bar(NOW + 500), HOME_KEY), NOW)
        assert not desk.bar(sign_bar(bar(NOW), HOME_KEY), NOW + 1)
        assert [b.bar.since for b in store.bars()] == [NOW + 500]


def test_the_gate_counts_a_bar_only_for_its_agreement_and_its_hpmn() -> None:
    """A bar signed under another agreement (the same HPMN key) or by the other party refuses
    nothing of this agreement's usage billed to HOME."""
    other = agreement(valid_from=T0 - 2 * 86_400)
    held = [
        sign_bar(bar(T0, agreement=other.hash), HOME_KEY),
        sign_bar(bar(T0, hpmn=VISITED), VISITED_KEY),
    ]
    gate = BarList.restored(AGREEMENT, held, HOME)
    usage = [(0, record(start=T0 + 1))]
    assert (len(gate), gate.admit(usage)) == (0, (usage, []))
    assert len(BarList.restored(other, held, HOME)) == 1
    assert BarList.restored(other, held, HOME).admit(usage)[0] == []


def test_the_vpmn_lists_the_barred_returns_no_bar_it_holds_backs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An HPMN whose validator counts a bar from second 0 returns the usage served before the
    bar reached the VPMN as BARRED too: the VPMN keeps the acknowledgement and names those
    returns (the ones to dispute); the one after its bar is backed."""
    records = (rated(record(up=10, start=T0)), rated(record(up=10, start=T0 + 100)))
    batch = seal(AGREEMENT, VISITED_KEY, records, sequence=1, now=NOW)
    backdated = BarList.restored(AGREEMENT, [sign_bar(bar(0), HOME_KEY)], HOME)
    ack = Validator(AGREEMENT, HOME_KEY, bars=backdated).validate(batch, NOW)
    assert [r.code for r in ack.ack.returns] == [ReturnCode.BARRED] * 2
    db, ack_file, agreement_file = tmp_path / "vpmn.db", tmp_path / "ack", tmp_path / "a.json"
    ack_file.write_bytes(ack.encode())
    agreement_file.write_bytes(signed(AGREEMENT).encode())
    with RoamingStore(db) as store:
        store.save_batch(batch)
        vpmn = CarrierDesk(store, signed(AGREEMENT), VISITED_KEY, window_capacity=10)
        assert vpmn.bar(sign_bar(bar(T0 + 50), HOME_KEY), T0 + 50)
    argv = ["roaming", "--json", "ack", str(ack_file), "--db", str(db), "--agreement",
            str(agreement_file)]  # fmt: skip
    assert tanglepay(argv) == 0
    assert json.loads(capsys.readouterr().out)["barred_without_a_bar"] == [0]
