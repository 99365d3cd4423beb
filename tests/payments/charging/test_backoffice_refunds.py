"""Held refunds in the back office (`backoffice`, `refund_desk`): a refund the refunder held is
listed with the key its wallet recorded, the operator retries it (then the refunder pays it
once, under its next attempt) or settles one paid outside the ledger (then nothing pays it);
the routes' refusals are named, and the OpenAPI document names them. Before, none of these
routes existed: a held refund was one error line in the log."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

import httpx

from payments.charging.backoffice import backoffice_app
from payments.charging.csms import Csms
from payments.charging.refund_attempts import MAX_ATTEMPTS, attempt_key
from payments.charging.store import CsmsStore
from tangle.protocol.transaction import address_of
from wallet.records import TransferStatus

from .test_backoffice import ADMIN, OPERATOR, client
from .test_payment import DRIVER, World, run
from .test_refund import Sent, WalletRules, _billed_prepaid
from .test_refund_attempts import SESSION_KEY, _refunder, _states, abandoned_after_attaching
from .test_refund_desk import NOTE, NOTHING, SESSIONS, TOKENS, owe

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

HELD = "/api/refunds?state=held"


def test_a_held_refund_retried_by_the_operator_is_paid_once_under_its_next_attempt(
    tmp_path: Path,
) -> None:
    """Every transfer fails for good until the refund is held at its last attempt; the back
    office lists it held with the key of that attempt; the operator checked it can never
    confirm and retries it: the next round pays 540 once, under attempt `MAX_ATTEMPTS`'s key,
    and nothing is owed after."""
    sent: list[Sent] = []
    ledger = WalletRules(sent, fail_new="input_spent")

    async def body(world: World) -> None:
        await _billed_prepaid(world, "CARD-H", 900, 1_200)  # 540 owed back
        refunds = _refunder(world, ledger)
        for _ in range(MAX_ATTEMPTS + 1):
            assert await refunds.retry() == 0
        last = attempt_key(SESSION_KEY, MAX_ATTEMPTS - 1)
        async with client(world, ledger) as http:
            [held] = (await http.get(HELD, headers=ADMIN)).json()["refunds"]
            assert (held["kind"], held["id"], held["amount"]) == ("session", "CP201/T1", 540)
            assert (held["held"], held["attempt"], held["key"]) == (True, 3, last.decode())
            assert sent[-1][2] == last  # the key the wallet recorded its last transfer under
            ledger.fail_new = None  # the ledger would take the next transfer
            retried = await http.post("/api/refunds/session/CP201/T1/retry", headers=ADMIN)
            assert retried.json()["key"] == attempt_key(SESSION_KEY, MAX_ATTEMPTS).decode()
            assert await refunds.retry() == 1
            assert await refunds.retry() == 0
            to = address_of(DRIVER.public_key)
            assert ledger.paid() == [(to, 540, attempt_key(SESSION_KEY, MAX_ATTEMPTS))]
            assert (await http.get("/api/refunds", headers=ADMIN)).json() == {
                "refunds": [],
                "next": None,
            }

    run(tmp_path, body)


def test_a_held_refund_paid_by_hand_is_settled_and_never_sent_again(tmp_path: Path) -> None:
    """Its transfer was abandoned after it was attached (it may still apply: held at once);
    the operator paid the driver by bank, and settling it is refused (409) while anyone may
    attach that transfer again and it would apply; once the wallet records one of its inputs
    spent by another confirmed transfer, it is settled with the note: it is gone, the
    refunder sends nothing more, and a second settlement answers 404 by name. Before, the
    abandoned transfer was settled at once."""
    sent: list[Sent] = []
    ledger = WalletRules(sent, lost=1)

    async def body(world: World) -> None:
        refunds = await abandoned_after_attaching(world, ledger)
        assert await refunds.retry() == 0
        assert _states(tmp_path / "csms.sqlite") == [("held", 0, 540)]
        async with client(world, ledger) as http:
            path = "/api/refunds/session/CP201/T1/settle"
            live = await http.post(path, json={"note": NOTE}, headers=ADMIN)
            assert (live.status_code, live.json()["error"]["code"]) == (409, "refund_transfer_live")
            ledger.spend_input_of(SESSION_KEY, b"a later payment")
            settled = await http.post(path, json={"note": NOTE}, headers=ADMIN)
            assert settled.status_code == 200
            assert (settled.json()["amount"], settled.json()["note"]) == (540, NOTE)
            assert settled.json()["transfer"] == "failed"
            again = await http.post(path, json={"note": NOTE}, headers=ADMIN)
            assert (again.status_code, again.json()["error"]["code"]) == (404, "refund_not_found")
        assert _states(tmp_path / "csms.sqlite") == []
        assert await refunds.retry() == 0
        assert len(sent) == 2  # never sent again

    run(tmp_path, body)


def test_a_refund_held_while_its_transfer_may_confirm_is_resumed_under_its_key_when_retried(
    tmp_path: Path,
) -> None:
    """A rest of 540 whose transfer the node holds unconfirmed (the refunder's send times out:
    `sending`, attempt 0). The operator holds it: it is listed held, and the refunder sends
    nothing more; then retries it: it is owed again under the same attempt and key, so the
    refunder resumes that one transfer, and once a milestone confirms it the driver is paid
    540 once. Before, the retry moved it to attempt 1: a second transfer under a new key
    beside the first, which the node could still confirm (paid twice)."""
    sent: list[Sent] = []
    ledger = WalletRules(sent, pending={SESSION_KEY})

    async def body(world: World) -> None:
        await _billed_prepaid(world, "CARD-P", 900, 1_200)  # 540 owed back
        refunds = _refunder(world, ledger)
        assert await refunds.retry() == 0  # submitted, not confirmed in time
        path = "/api/refunds/session/CP201/T1/"
        async with client(world) as http:
            held = (await http.post(path + "hold", headers=ADMIN)).json()
            assert (held["state"], held["held"], held["attempt"]) == ("paused", True, 0)
            [listed] = (await http.get(HELD, headers=ADMIN)).json()["refunds"]
            assert listed["key"] == SESSION_KEY.decode()
            assert await refunds.retry() == 0
            assert len(sent) == 1  # held: not sent again
            retried = (await http.post(path + "retry", headers=ADMIN)).json()
            assert (retried["state"], retried["attempt"]) == ("sending", 0)
            assert retried["key"] == SESSION_KEY.decode()
        ledger.pending = ()  # a milestone confirms the first transfer
        ledger.recorded[SESSION_KEY] = dataclasses.replace(
            ledger.recorded[SESSION_KEY], status=TransferStatus.CONFIRMED, confirmed_index=2
        )
        assert await refunds.retry() == 1
        assert await refunds.retry() == 0
        assert ledger.paid() == [(address_of(DRIVER.public_key), 540, SESSION_KEY)]
        assert {key for *_, key in sent} == {SESSION_KEY}  # one transfer, resumed
        assert _states(tmp_path / "csms.sqlite") == []

    run(tmp_path, body)


def _with_rows(tmp_path: Path, body: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
    """`body` with a client of a back office whose store owes `SESSIONS` and `TOKENS`, whose
    CPO wallet recorded no transfer."""

    async def main() -> None:
        async with CsmsStore(tmp_path / "csms.sqlite") as store:
            await owe(store, SESSIONS, TOKENS)
            held = [("CP3", "X/Y", 70, "held", 0, 0)]  # a transaction id with a slash
            await owe(store, held, [])
            csms = Csms(store=store, pricing=lambda t, wh, s: 0)
            app = backoffice_app(csms, None, OPERATOR, refund_wallet=NOTHING)
            transport = httpx.ASGITransport(app)
            async with httpx.AsyncClient(transport=transport, base_url="http://csms.test") as h:
                await asyncio.wait_for(body(h), 20)

    asyncio.run(main())


def test_the_refund_routes_page_and_refuse_by_name(tmp_path: Path) -> None:
    async def body(http: httpx.AsyncClient) -> None:
        for method, path in [
            ("GET", "/api/refunds"),
            ("POST", "/api/refunds/token/2/retry"),
            ("POST", "/api/refunds/token/2/settle"),
            ("POST", "/api/refunds/token/2/hold"),
        ]:
            assert (await http.request(method, path)).status_code == 401
        seen: list[str] = []
        url: str | None = "/api/refunds?limit=3"
        for _ in range(5):
            page = (await http.get(url, headers=ADMIN)).json()
            seen += [f"{r['kind']}/{r['id']}" for r in page["refunds"]]
            url = None if page["next"] is None else f"/api/refunds?limit=3&after={page['next']}"
            if url is None:
                break
        assert seen == [
            "session/CP1/T1",
            "session/CP1/T2",
            "session/CP2/A/B",
            "session/CP3/X/Y",
            "token/1",
            "token/2",
            "token/3",
        ]
        held = (await http.get(HELD, headers=ADMIN)).json()["refunds"]
        assert [r["id"] for r in held] == ["CP1/T2", "CP3/X/Y", "2"]
        for query in ["state=sent", "limit=0", "limit=501", "limit=x", "after=bill/1"]:
            bad = await http.get(f"/api/refunds?{query}", headers=ADMIN)
            assert bad.status_code == 400, query
        retried = await http.post("/api/refunds/session/CP3/X/Y/retry", headers=ADMIN)
        assert (retried.status_code, retried.json()["attempt"]) == (200, 1)

        async def code(path: str, doc: object = None) -> tuple[int, str]:
            answer = await http.post(path, json=doc, headers=ADMIN)
            return answer.status_code, answer.json()["error"]["code"]

        not_held = (409, "refund_not_held")
        assert await code("/api/refunds/session/CP3/X/Y/retry") == not_held  # retried already
        assert await code("/api/refunds/session/CP1/T1/settle", {"note": NOTE}) == not_held
        assert await code("/api/refunds/token/99/retry") == (404, "refund_not_found")
        assert await code("/api/refunds/bill/1/retry") == (400, "bad_refund")
        assert await code("/api/refunds/token/x/retry") == (400, "bad_refund")
        assert await code("/api/refunds/token/2/settle", {"note": ""}) == (400, "bad_note")
        assert await code("/api/refunds/token/2/settle", {}) == (400, "bad_request")
        settled = await http.post("/api/refunds/token/2/settle", json={"note": NOTE}, headers=ADMIN)
        assert settled.json()["settled"] is True
        held = (await http.get(HELD, headers=ADMIN)).json()["refunds"]
        assert [r["id"] for r in held] == ["CP1/T2"]
        holding = await http.post("/api/refunds/session/CP1/T1/hold", headers=ADMIN)
        assert (holding.status_code, holding.json()["held"]) == (200, True)
        assert await code("/api/refunds/token/99/hold") == (404, "refund_not_found")
        doc = (await http.get("/openapi.json")).json()["paths"]
        assert "409" in doc["/api/refunds/{kind}/{id}/settle"]["post"]["responses"]
        names = [p["name"] for p in doc["/api/refunds"]["get"]["parameters"]]
        assert names == ["state", "limit", "after"]

    _with_rows(tmp_path, body)
