"""`python -m examples.roaming --node URL --faucet URL --forever`: two carriers roaming on a
running devnet until killed, at a gentle rate.

The HPMN's wallet is paid by the devnet's faucet (`POST .../faucet`), anchors the signed
agreement and opens a two-way channel to the VPMN. Each carrier serves its operator API and its
back-office API (fraud alerts, metrics) on loopback; every round (`--interval`, 5 s) IoT SIMs
roam both ways, each VPMN seals a batch, anchors its header, sends it over the signed API, keeps
the signed acknowledgement and anchors it, and the channel settles what is due. One JSON line a
round on stdout (the first says where the APIs listen). Every carrier's data lives in a fresh
directory per start, so a restarted child starts over (its anchors and channel are new).
"""

from __future__ import annotations

import json
import secrets
import time
from typing import TYPE_CHECKING, Any, Final

import anyio
import httpx
import trio

from payments.channels.twoway import TwoWayChannel
from payments.ledger.funder import ChannelPolicy, LedgerFunder
from payments.roaming.acknowledgement import anchor_payload as ack_anchor
from payments.roaming.acknowledgement import verify_ack
from payments.roaming.agreement import Agreement, Party, SignedAgreement, sign_agreement
from payments.roaming.agreement import anchor_payload as agreement_anchor
from payments.roaming.alerts import FraudWatch
from payments.roaming.api import post_batch, roaming_app
from payments.roaming.backoffice import backoffice_app
from payments.roaming.batch import Batcher
from payments.roaming.batch import anchor_payload as header_anchor
from payments.roaming.errors import SettlementError
from payments.roaming.fraud import FraudConfig, FraudMonitor
from payments.roaming.ledger_book import LedgerBook, anchor
from payments.roaming.request_auth import RequestVerifier
from payments.roaming.settlement import Settlement
from payments.roaming.store import RoamingStore
from payments.roaming.subscriber import SubscriberHasher
from tangle.http.api import serve_api
from wallet import AccountKey, Wallet, WalletConfig
from wallet.keys import AddressKey, ExtendedKey

from ._devnet import LocalWork
from .roaming import DEPOSIT, HPMN, SALT, VPMN, Carrier, iot_usage, plans, settle

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

FUNDING_TIMEOUT_S: Final = 180.0
CONFIG: Final = WalletConfig(confirm_timeout_s=120, pow_threads=1)
"""One proof-of-work thread: a gentle neighbour on the devnet's machine."""
SIMS: Final = {(VPMN, HPMN): 4, (HPMN, VPMN): 2}
"""SIMs roaming each way per round: about 1.5k minor units net a round, so the channel's
deposit lasts for days at the default interval."""


def faucet_endpoint(faucet: str) -> str:
    """The faucet's POST URL: `devnet.json` names it with `/faucet`; a bare base gets it."""
    base = faucet.rstrip("/")
    return base if base.endswith("/faucet") else base + "/faucet"


async def fund(wallet: Wallet, faucet: str, needed: int) -> None:
    """Have the faucet pay `needed` to the wallet, then wait until a milestone confirmed it."""
    url = faucet_endpoint(faucet)
    with anyio.fail_after(FUNDING_TIMEOUT_S):
        async with httpx.AsyncClient(timeout=30) as http:
            while (await wallet.sync()).balance.available < needed:
                body = {"address": wallet.address(0).hex(), "amount": needed}
                answer = await http.post(url, json=body)
                if answer.status_code not in (201, 503):  # 503: busy until the next milestone
                    answer.raise_for_status()
                for _ in range(60 if answer.status_code == 201 else 1):
                    await trio.sleep(1)
                    if (await wallet.sync()).balance.available >= needed:
                        return


def _watch() -> FraudWatch:
    config = FraudConfig(
        data_volume_limit=10**9, call_seconds_limit=36_000, imsi_spend_cap=10**7,
        partner_spend_cap=10**9,
    )  # fmt: skip
    return FraudWatch(FraudMonitor(config))


async def forever(
    node: str,
    faucet: str,
    work: Path,
    *,
    rounds: int | None,
    interval_s: float,
    say: Callable[[dict[str, Any]], None],
) -> None:
    """Run the two carriers against the devnet at `node` (see the module docstring); `rounds`
    None runs until cancelled."""
    hasher = SubscriberHasher(salt=SALT)
    vpmn_key = AddressKey(ExtendedKey.from_seed(secrets.token_bytes(32)))
    account = AccountKey(secrets.token_bytes(32), 0)
    async with (
        Wallet.open(account, url=node, state_path=work / "wallet.sqlite", config=CONFIG) as wallet,
        LocalWork(node) as client,  # anchors worked here: the node rate-limits its own PoW
        trio.open_nursery() as nursery,
    ):
        await fund(wallet, faucet, DEPOSIT + 1_000_000)
        hpmn_key = wallet.channel_key(0)
        keys = {VPMN: vpmn_key, HPMN: hpmn_key}
        now = int(time.time())
        agreement = Agreement(
            version=1, previous=None,
            parties=tuple(Party(tadig=t, key=keys[t].public_key, plans=plans(1_000))  # type: ignore[arg-type]
                          for t in sorted(keys)),
            valid_from=now - 86_400, valid_until=now + 365 * 86_400, currency="EUR",
            decimal_places=3, tax_bp=0, batch_max_records=10, batch_max_age_s=60,
            fraud_charge_4h=10_000_000, dispute_window_s=45 * 86_400,
        )  # fmt: skip
        signed = SignedAgreement(
            agreement=agreement,
            signatures=tuple(sign_agreement(agreement, keys[p.tadig]) for p in agreement.parties),  # type: ignore[arg-type]
        )
        book = LedgerBook(work / "anchors.db")
        anchors = 0

        async def anchored(payload: Any, kind: str) -> None:
            nonlocal anchors
            anchors += (await anchor(book, client, payload, kind))[1]

        await anchored(agreement_anchor(signed), "agreement")
        watches = {t: _watch() for t in keys}
        carriers = {t: Carrier(t, keys[t], work, signed, watch=watches[t]) for t in keys}
        funder = LedgerFunder(wallet, hpmn_key, policy=ChannelPolicy(bidirectional=True))
        terms = await funder.open(vpmn_key.public_key, DEPOSIT)
        for t, c in carriers.items():
            c.settlement = Settlement(agreement, TwoWayChannel(terms, keys[t]))
        ports, backoffice, readers = {}, {}, []
        for t, c in carriers.items():
            verifier = RequestVerifier(
                {p.tadig: p.key for p in agreement.parties if p.tadig != t}, own=t
            )
            app = roaming_app(c.desk, verifier, clock=lambda: int(time.time()))
            ports[t] = await nursery.start(serve_api, app, "127.0.0.1", 0)
            reader = RoamingStore(work / f"{t}.db")  # the back office reads on its own connection
            readers.append(reader)
            office = backoffice_app(watches[t], reader)
            backoffice[t] = (
                f"http://127.0.0.1:{await nursery.start(serve_api, office, '127.0.0.1', 0)}"
            )
        say({"operator_api": {t: f"http://127.0.0.1:{p}" for t, p in ports.items()},
             "backoffice_api": backoffice, "channel": terms.channel_id.hex(),
             "agreement": agreement.hash.hex()})  # fmt: skip
        batchers = {(s, r): Batcher(agreement, keys[s], sender=s, recipient=r) for s, r in SIMS}
        done, now = 0, 0
        while rounds is None or done < rounds:
            # each round is new usage: its clock moves on even when rounds come within a second
            # (the same second again would be the same events, duplicates the HPMN returns)
            now = max(int(time.time()), now + 1)
            accepted = 0
            for (sender, recipient), sims in SIMS.items():
                batcher = batchers[(sender, recipient)]
                records = iot_usage(agreement, sender, recipient, now, hasher, sims)
                batches = [b for r in records if (b := batcher.add(r, now)) is not None]
                batches += [b for b in [batcher.flush(now)] if b is not None]
                store = carriers[sender].store
                url = f"http://127.0.0.1:{ports[recipient]}"
                async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                    for batch in batches:
                        await trio.to_thread.run_sync(store.save_batch, batch)
                        await anchored(header_anchor(batch.signed), "batch")
                        ack = await post_batch(http, keys[sender], sender, batch, int(time.time()))
                        verify_ack(ack, agreement)
                        await trio.to_thread.run_sync(store.save_ack, ack)
                        await anchored(ack_anchor(ack), "ack")
                        for c in carriers.values():
                            assert c.settlement is not None
                            c.settlement.record(ack)
                        accepted += ack.ack.accepted_amount
            try:
                paid = [
                    settle(carriers[HPMN], carriers[VPMN]),
                    settle(carriers[VPMN], carriers[HPMN]),
                ]
            except SettlementError as e:  # the channel is spent: keep batching, report it
                paid, note = [], str(e)
            else:
                note = ""
            done += 1
            channel = carriers[HPMN].settlement.channel  # type: ignore[union-attr]
            say(
                {
                    "round": done,
                    "accepted": accepted,
                    "anchors": anchors,
                    "payments": [list(p) for p in paid if p is not None],
                    "channel_sequence": channel.sequence,
                    "channel_payee_balance": channel.payee_balance,
                    "alerts": sum(w.log.published for w in watches.values()),
                    "note": note,
                }
            )
            await trio.sleep(interval_s)
        nursery.cancel_scope.cancel()
    for store in (*(c.store for c in carriers.values()), *readers):
        store.close()
    book.close()


def print_line(doc: dict[str, Any]) -> None:
    print(json.dumps(doc, sort_keys=True), flush=True)
