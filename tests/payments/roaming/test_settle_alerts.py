"""Fraud alerts published: the desk runs the rules over each accepted batch and numbers the
alerts in a bounded log; the back-office API serves them as a long poll (an alert published
while a reader waits reaches it), counts them per rule and partner with the open exposure in
Prometheus text, refuses a missing token and out-of-range queries; `tanglepay roaming alerts`
reads them (one page, and following) from a real server on loopback."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING

import httpx
import trio

from payments.roaming.agreement import Party, SignedAgreement, sign_agreement
from payments.roaming.alerts import AlertLog, FraudWatch
from payments.roaming.api import post_batch, roaming_app
from payments.roaming.backoffice import ALERTS, METRICS, PREFIX, backoffice_app
from payments.roaming.bars import Bar, sign_bar
from payments.roaming.batch import seal
from payments.roaming.desk import CarrierDesk
from payments.roaming.fraud import Alert, AlertKind, FraudConfig, FraudMonitor
from payments.roaming.rating import rate
from payments.roaming.request_auth import RequestVerifier
from payments.roaming.store import RoamingStore
from tangle.http.api import serve_api
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
    standard_plans,
)

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

IMSI = "262010000000001"
TOKEN = "s3cret-token"
THIRD = "GBRCC"
"""A second partner of HOME (MALLORY_KEY is its operator key here)."""


def watch() -> FraudWatch:
    config = FraudConfig(
        data_volume_limit=1_000, call_seconds_limit=10**6, imsi_spend_cap=10**9,
        partner_spend_cap=10**9,
    )  # fmt: skip
    return FraudWatch(FraudMonitor(config), AlertLog(capacity=100))


def alert(n: int, partner: str = VISITED) -> Alert:
    return Alert(
        kind=AlertKind.HIGH_USAGE, partner=partner, imsi_hash=bytes([n % 256]) * 32,
        evidence=(bytes(32),), at=NOW, value=n, limit=1,
    )  # fmt: skip


def test_the_log_is_numbered_bounded_and_counts_everything() -> None:
    log = AlertLog(capacity=3, max_series=2)
    assert log.publish(alert(i, partner=p) for i, p in enumerate(["AAAAA", "BBBBB", "CCCCC"]))
    assert log.publish([alert(9), alert(10)]) == 5
    assert len(log) == 3
    assert log.dropped == 2
    assert [a.number for a in log.after(0)] == [3, 4, 5]  # the oldest kept next
    assert [a.number for a in log.after(3, limit=1)] == [4]
    assert log.after(5) == []
    assert log.counts() == {
        ("high-usage", "AAAAA"): 1,
        ("high-usage", "BBBBB"): 1,
        ("high-usage", "other"): 3,  # past max_series, new partners count together
    }


def desk_with_alerts(tmp_path: Path) -> tuple[CarrierDesk, FraudWatch]:
    """HOME's desk: it bars IMSI at T0 + 50, then takes a batch of IMSI's usage (one record
    before the bar, one after, 2000 bytes in all)."""
    w = watch()
    desk = CarrierDesk(
        RoamingStore(tmp_path / "hpmn.db"), signed(AGREEMENT), HOME_KEY, window_capacity=100,
        watch=w,
    )  # fmt: skip
    desk.bar(sign_bar(Bar(agreement=AGREEMENT.hash, hpmn=HOME, imsi_hash=HASHER.imsi(IMSI),
                          since=T0 + 50), HOME_KEY), NOW)  # fmt: skip
    records = (rated(record(up=600, start=T0)), rated(record(up=1_400, start=T0 + 100)))
    ack = desk.receive_batch(seal(AGREEMENT, VISITED_KEY, records, sequence=1, now=NOW), NOW)
    assert ack.ack.accepted
    return desk, w


def test_the_desk_publishes_the_alerts_of_an_accepted_batch(tmp_path: Path) -> None:
    desk, w = desk_with_alerts(tmp_path)
    rules = sorted(a.alert.kind.value for a in w.log.after(0))
    assert rules == ["high-usage", "usage-after-bar"]
    assert {a.alert.partner for a in w.log.after(0)} == {VISITED}
    # the same batch again (a retry) gets its stored ack and raises nothing new
    again = desk.store.batch(VISITED, HOME, 1)
    assert again is not None
    desk.receive_batch(again, NOW)
    assert w.log.published == 2
    # a duplicate is returned and not counted again: 600 bytes twice would cross 1000
    first = rated(record(up=600, start=T0 + 200, imsi="262010000000002"))
    desk.receive_batch(seal(AGREEMENT, VISITED_KEY, (first,), sequence=2, now=NOW), NOW)
    b3 = seal(AGREEMENT, VISITED_KEY, (first,), sequence=3, now=NOW)
    assert [r.code.name for r in desk.receive_batch(b3, NOW).ack.returns] == ["DUPLICATE"]
    assert w.log.published == 2
    desk.store.close()


async def test_the_back_office_streams_alerts_and_serves_metrics(tmp_path: Path) -> None:
    desk, w = desk_with_alerts(tmp_path)
    vpmn = RoamingStore(tmp_path / "vpmn.db")  # a VPMN's sealed, unacknowledged batch
    sealed = seal(AGREEMENT, VISITED_KEY, (rated(record(up=5_000, start=T0)),), sequence=1, now=NOW)
    vpmn.save_batch(sealed)
    app = backoffice_app(w, vpmn, token=TOKEN)
    auth = {"authorization": f"Bearer {TOKEN}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bo", headers=auth) as http:
        page = (await http.get(ALERTS, params={"after": 0})).json()
        assert [a["number"] for a in page["alerts"]] == [1, 2]
        assert page["next"] == 2
        assert HASHER.imsi(IMSI).hex() in {a["imsi_hash"] for a in page["alerts"]}
        got: list[dict[str, object]] = []

        async def wait_for_more() -> None:
            r = await http.get(ALERTS, params={"after": 2, "wait": 10})
            got.append(r.json())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait_for_more)
            await trio.sleep(0.3)
            assert got == []  # still waiting
            w.log.publish([alert(7)])
        assert [a["number"] for a in got[0]["alerts"]] == [3]  # type: ignore[union-attr]
        ahead = (await http.get(ALERTS, params={"after": 99})).json()
        assert (ahead["alerts"], ahead["next"]) == ([], 3)  # put back after a restart
        for bad in ({"after": "-1"}, {"limit": "1001"}, {"wait": "31"}, {"after": "x"}):
            assert (await http.get(ALERTS, params=bad)).status_code == 400
        text = (await http.get(METRICS)).text
        assert f'tanglepay_roaming_alerts_total{{rule="high-usage",partner="{VISITED}"}} 2' in text
        assert 'rule="usage-after-bar"' in text
        exposure = sealed.signed.header.total_charge
        assert exposure > 0
        assert (
            f'tanglepay_roaming_open_exposure{{vpmn="{VISITED}",hpmn="{HOME}"}} {exposure}' in text
        )
        doc = (await http.get(f"{PREFIX}/openapi.json")).json()
        assert set(doc["paths"]) == {ALERTS, METRICS, f"{PREFIX}/openapi.json"}
    async with httpx.AsyncClient(transport=transport, base_url="http://bo") as anonymous:
        assert (await anonymous.get(ALERTS)).status_code == 401
        assert (
            await anonymous.get(METRICS, headers={"authorization": "Bearer no"})
        ).status_code == 401
    desk.store.close()
    vpmn.close()


async def test_the_cli_reads_and_follows_alerts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    desk, w = desk_with_alerts(tmp_path)
    (tmp_path / "token").write_text(TOKEN)
    app = backoffice_app(w, desk.store, token=TOKEN)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_api, app, "127.0.0.1", 0)
        common = ["--url", f"http://127.0.0.1:{port}", "--token-file", str(tmp_path / "token")]

        def cli(*args: str) -> int:
            return tanglepay(["roaming", *args])

        assert await trio.to_thread.run_sync(cli, "--json", "alerts", *common) == 0
        page = json.loads(capsys.readouterr().out)
        assert [a["rule"] for a in page["alerts"]] == ["usage-after-bar", "high-usage"]
        assert await trio.to_thread.run_sync(cli, "alerts", *common, "--after", "1") == 0
        out = capsys.readouterr().out
        assert out.startswith("#2 high-usage")
        assert IMSI not in out
        follow = ("--json", "alerts", *common, "--follow", "--polls", "1")
        assert await trio.to_thread.run_sync(cli, *follow) == 0
        lines = capsys.readouterr().out.splitlines()
        assert [json.loads(x)["number"] for x in lines[:-1]] == [1, 2]
        assert json.loads(lines[-1]) == {"next": 2, "received": 2}
        assert await trio.to_thread.run_sync(cli, "--json", "alerts", "--url", common[1]) == 3
        assert json.loads(capsys.readouterr().out)["error"]["code"] == "BackOfficeError"
        nursery.cancel_scope.cancel()
    desk.store.close()


async def test_one_watch_over_two_partners_catches_a_cloned_sim(tmp_path: Path) -> None:
    """HOME's subscriber seen in VISITED's and in THIRD's network at once: each partner's batch
    goes to its own desk behind one operator API, and the shared watch raises CLONED_SIM."""
    third_agreement = agreement(
        parties=(
            Party(tadig=HOME, key=HOME_KEY.public_key, plans=standard_plans()),
            Party(tadig=THIRD, key=MALLORY_KEY.public_key, plans=standard_plans()),
        )
    )
    third_signed = SignedAgreement(
        agreement=third_agreement,
        signatures=(
            sign_agreement(third_agreement, HOME_KEY),
            sign_agreement(third_agreement, MALLORY_KEY),
        ),
    )
    w = watch()
    store = RoamingStore(tmp_path / "hpmn.db")
    desks = {
        VISITED: CarrierDesk(store, signed(AGREEMENT), HOME_KEY, window_capacity=100, watch=w),
        THIRD: CarrierDesk(store, third_signed, HOME_KEY, window_capacity=100, watch=w),
    }
    verifier = RequestVerifier(
        {VISITED: VISITED_KEY.public_key, THIRD: MALLORY_KEY.public_key}, own=HOME
    )
    app = roaming_app(desks, verifier, clock=lambda: NOW)
    here = rated(record(up=10, start=T0, duration=600))
    there = record(sender=THIRD, up=10, start=T0 + 100, duration=600)
    there = replace(there, charge=rate(third_agreement, there).charge)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hpmn") as http:
        b1 = seal(AGREEMENT, VISITED_KEY, (here,), sequence=1, now=NOW)
        assert (await post_batch(http, VISITED_KEY, VISITED, b1, NOW)).ack.accepted
        b2 = seal(third_agreement, MALLORY_KEY, (there,), sequence=1, now=NOW)
        assert (await post_batch(http, MALLORY_KEY, THIRD, b2, NOW)).ack.accepted
    [clone] = [a.alert for a in w.log.after(0) if a.alert.kind is AlertKind.CLONED_SIM]
    assert (clone.partner, clone.evidence) == (THIRD, (here.event_id, there.event_id))
    assert desks[VISITED].next_sequence == desks[THIRD].next_sequence == 2
    store.close()
