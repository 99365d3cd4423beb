"""Roaming settlement between two carriers on a devnet of their own.

    python -m examples.roaming --self-contained [--json]
    python -m examples.roaming --node URL --faucet URL --forever [--interval S]

Carriers WERFD and XLKJE (the TADIG codes of the sample TAP file) sign an agreement and anchor
its hash; XLKJE opens a two-way channel to WERFD on the ledger. IoT SIMs roam both ways; WERFD
also imports the sample TAP 3.12 file (whose audit total is wrong, and whose charges are not the
agreement's rates) and the HPMN's fraud monitor reads the sample NRTRDE file and catches a
cloned SIM. Each VPMN seals batches, anchors their signed headers and sends the records over the
signed operator API to the other carrier, which validates, answers with a signed (and anchored)
acknowledgement and pays the accepted amount over the channel. XLKJE disputes a record, WERFD
grants a credit note that the next settlement nets in, and both sign the month's statement,
printed as CSV (the summary as JSON with `--json`).

Attached to a running devnet (`--node`, `--faucet`, `--forever`; see `_roaming_forever.py`),
the two carriers keep roaming, batching, acknowledging and settling at a gentle rate until
killed, one JSON line a round.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import httpx
import trio

from payments.channels.state import Role
from payments.channels.twoway import TwoWayChannel
from payments.ledger.funder import ChannelPolicy
from payments.roaming.acknowledgement import anchor_payload as ack_anchor
from payments.roaming.acknowledgement import verify_ack
from payments.roaming.agreement import Agreement, Party, SignedAgreement, sign_agreement
from payments.roaming.agreement import anchor_payload as agreement_anchor
from payments.roaming.api import post_batch, roaming_app
from payments.roaming.batch import Batcher, anchor_payload
from payments.roaming.desk import CarrierDesk
from payments.roaming.disputes import (
    Dispute,
    DisputeBook,
    Resolution,
    sign_dispute,
    sign_resolution,
)
from payments.roaming.disputes import anchor_payload as dispute_anchor
from payments.roaming.fraud import FraudConfig, FraudMonitor
from payments.roaming.nrtrde import read_nrtrde
from payments.roaming.partner_file import ImportPolicy
from payments.roaming.rating import Plan, PlanKind, Rounding, rate
from payments.roaming.record import EventType, UsageRecord
from payments.roaming.request_auth import RequestVerifier
from payments.roaming.settlement import Settlement
from payments.roaming.statement import SignedStatement, StatementBuilder
from payments.roaming.store import RoamingStore
from payments.roaming.subscriber import SubscriberHasher
from payments.roaming.tap import read_tap
from tangle.http.api import serve_api
from wallet.keys import AddressKey, ExtendedKey

if TYPE_CHECKING:
    from payments.channels.twoway import Proposal
    from payments.roaming.acknowledgement import SignedAcknowledgement
    from payments.roaming.alerts import FraudWatch
    from tangle.protocol.payload import TaggedData

VPMN, HPMN = "WERFD", "XLKJE"
"""WERFD serves XLKJE's roamers in the sample TAP file; here both roam in each other's network."""
SAMPLES: Final = Path(__file__).resolve().parent.parent / "tests" / "vectors" / "tap"
DEPOSIT: Final = 50_000_000
SIMS: Final = 20
SALT: Final = b"example-agreement-salt"


def plans(data_price: int) -> tuple[Plan, ...]:
    def flat(service: EventType, price: int, per: int, increment: int, minimum: int) -> Plan:
        return Plan(
            service=service, price=price, per=per, increment=increment, minimum=minimum,
            rounding=Rounding.UP, kind=PlanKind.FLAT, tiers=(), commitment=0,
        )  # fmt: skip

    return (
        flat(EventType.DATA, data_price, 1_048_576, 1024, 1024),
        flat(EventType.MOC, 2_000, 60, 30, 60),
        flat(EventType.MTC, 500, 60, 30, 60),
        flat(EventType.SMS_MO, 300, 1, 1, 1),
        flat(EventType.SMS_MT, 0, 1, 1, 0),
        flat(EventType.SUPPLEMENTARY, 0, 1, 1, 0),
    )


def iot_usage(
    agreement: Agreement, vpmn: str, hpmn: str, now: int, hasher: SubscriberHasher, sims: int
) -> list[UsageRecord]:
    """`sims` IoT SIMs of `hpmn` sending data through `vpmn` within the last hour, rated."""
    mcc = "234" if hpmn == HPMN else "262"
    out = []
    for i in range(sims):
        r = UsageRecord(
            sender=vpmn, recipient=hpmn, imsi_hash=hasher.imsi(f"{mcc}01{i:010d}"),
            msisdn_hash=bytes(32), event_type=EventType.DATA, start_utc=now - 3_600 + 60 * i,
            duration_s=300, volume_up=20_000 * (i + 1), volume_down=200_000 * (i + 1),
            apn="iot.example", serving_network=vpmn, charge=0,
        )  # fmt: skip
        out.append(replace(r, charge=rate(agreement, r).charge))
    return out


class Carrier:
    """One carrier: its key, store, desk (as HPMN, with its fraud watch if given) and its side
    of the channel."""

    def __init__(
        self,
        tadig: str,
        key: AddressKey,
        work: Path,
        signed: SignedAgreement,
        *,
        watch: FraudWatch | None = None,
    ) -> None:
        self.tadig, self.key = tadig, key
        self.store = RoamingStore(work / f"{tadig}.db")
        self.desk = CarrierDesk(self.store, signed, key, watch=watch)
        self.settlement: Settlement | None = None


def settle(payer: Carrier, payee: Carrier) -> tuple[str, str, int, int] | None:
    """`payer` pays what it owes over the channel and the other side countersigns (in process
    here; `payments.transports.twoway_tcp` carries the same messages between two processes).
    (payer, payee, channel sequence, amount), or None if nothing was due."""
    assert payer.settlement is not None
    assert payee.settlement is not None
    channel = payer.settlement.channel
    before = channel.own_balance
    proposal: Proposal | None = payer.settlement.pay()
    if proposal is None:
        return None
    signed = payee.settlement.channel.countersign(proposal)
    theirs = signed.payee_signature if channel.role is Role.PAYER else signed.payer_signature
    assert theirs is not None
    channel.complete(proposal.proof.sequence, theirs)
    return (payer.tadig, payee.tadig, channel.sequence, before - channel.own_balance)


async def run(devnet: Path, work: Path) -> dict[str, Any]:
    from ._devnet import LocalWork, devnet_payer, read_devnet

    _, api, _ = read_devnet(devnet)
    hasher = SubscriberHasher(salt=SALT)
    vpmn_key = AddressKey(ExtendedKey.from_seed(b"\x5a" * 32))
    policy = ChannelPolicy(bidirectional=True)
    async with (
        devnet_payer(devnet, work / "xlkje", 2 * DEPOSIT, faucet_key=True, policy=policy) as (
            funder, hpmn_key, network_id, _min_output,
        ),
        LocalWork(api) as node,  # anchors worked here: the node rate-limits its own PoW
    ):  # fmt: skip
        anchors: list[str] = []

        async def anchor(payload: TaggedData) -> None:
            anchors.append((await node.submit_pow(payload)).hex())

        now = int(time.time())
        keys = {VPMN: vpmn_key, HPMN: hpmn_key}
        agreement = Agreement(
            version=1, previous=None,
            parties=tuple(Party(tadig=t, key=keys[t].public_key, plans=plans(1_000))  # type: ignore[arg-type]
                          for t in sorted(keys)),
            valid_from=1_388_534_400, valid_until=now + 365 * 86_400, currency="EUR",
            decimal_places=3, tax_bp=0, batch_max_records=10, batch_max_age_s=60,
            fraud_charge_4h=10_000_000, dispute_window_s=45 * 86_400,
        )  # fmt: skip
        signed = SignedAgreement(
            agreement=agreement,
            signatures=tuple(sign_agreement(agreement, keys[p.tadig]) for p in agreement.parties),  # type: ignore[arg-type]
        )
        await anchor(agreement_anchor(signed))
        carriers = {t: Carrier(t, keys[t], work, signed) for t in keys}

        # XLKJE (the payer) opens the two-way channel to WERFD on the ledger
        terms = await funder.open(vpmn_key.public_key, DEPOSIT)
        for t, c in carriers.items():
            c.settlement = Settlement(agreement, TwoWayChannel(terms, keys[t]))
        ledger = await funder.ledger_state(terms.channel_id)

        # the HPMN's fraud monitor: the NRTRDE sample, then a cloned SIM
        monitor = FraudMonitor(
            FraudConfig(data_volume_limit=10**9, call_seconds_limit=36_000,
                        imsi_spend_cap=10**7, partner_spend_cap=10**9)
        )  # fmt: skip
        nrtrde = read_nrtrde((SAMPLES / "nrt_2_1.ber").read_bytes(), ImportPolicy(hasher=hasher))
        alerts = [a for r in nrtrde.records for a in monitor.observe(r, now=r.start_utc)]
        usage = {
            (VPMN, HPMN): iot_usage(agreement, VPMN, HPMN, now, hasher, SIMS),
            (HPMN, VPMN): iot_usage(agreement, HPMN, VPMN, now, hasher, SIMS // 4),
        }
        clone = replace(usage[(VPMN, HPMN)][0], sender="GBRCC", serving_network="GBRCC", charge=0)
        for r in (*usage[(VPMN, HPMN)], clone):
            alerts += monitor.observe(r, now=now)
        cloned = [a for a in alerts if a.kind.value == "cloned-sim"]
        monitor.bar(clone.imsi_hash, since=now)

        # WERFD imports the sample TAP file: audited, kept, batched with the IoT usage
        tap = read_tap((SAMPLES / "tap_3_12_valid.ber").read_bytes(), ImportPolicy(hasher=hasher))
        vpmn_store = carriers[VPMN].store
        await trio.to_thread.run_sync(vpmn_store.import_file, tap)
        pending = list(await trio.to_thread.run_sync(vpmn_store.pending, VPMN, HPMN, 100))
        usage[(VPMN, HPMN)] = pending + usage[(VPMN, HPMN)]

        acks: list[SignedAcknowledgement] = []
        async with trio.open_nursery() as nursery:
            ports = {}
            for t, c in carriers.items():
                verifier = RequestVerifier(
                    {p.tadig: p.key for p in agreement.parties if p.tadig != t}, own=t
                )
                app = roaming_app(c.desk, verifier, clock=lambda: int(time.time()))
                ports[t] = await nursery.start(serve_api, app, "127.0.0.1", 0)
            for (sender, recipient), records in usage.items():
                batcher = Batcher(agreement, keys[sender], sender=sender, recipient=recipient)
                batches = [b for r in records if (b := batcher.add(r, now)) is not None]
                batches += [b for b in [batcher.flush(now)] if b is not None]
                url = f"http://127.0.0.1:{ports[recipient]}"
                async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                    for batch in batches:
                        await anchor(anchor_payload(batch.signed))
                        ack = await post_batch(http, keys[sender], sender, batch, int(time.time()))
                        verify_ack(ack, agreement)
                        await anchor(ack_anchor(ack))
                        acks.append(ack)
                        if sender == VPMN:
                            await trio.to_thread.run_sync(vpmn_store.save_batch, batch)
            nursery.cancel_scope.cancel()

        for c in carriers.values():
            assert c.settlement is not None
            for ack in acks:
                c.settlement.record(ack)
        payments = [settle(carriers[HPMN], carriers[VPMN]), settle(carriers[VPMN], carriers[HPMN])]

        # XLKJE disputes one record of WERFD's second batch; WERFD grants a credit note
        book = DisputeBook(agreement)
        disputed = next(a for a in acks if a.ack.sender == VPMN and a.ack.sequence == 2)
        claim = sign_dispute(
            Dispute(agreement=agreement.hash, batch=disputed.ack.batch, raised_by=HPMN,
                    indices=(0,), amount=100, reason="test SIM, not billable",
                    raised_utc=int(time.time())),
            hpmn_key,
        )  # fmt: skip
        book.raise_dispute(claim, disputed)
        answer = sign_resolution(
            Resolution(dispute=claim.body.id, accepted=True, credit=100, reason="agreed",
                       resolved_utc=int(time.time())), vpmn_key,
        )  # fmt: skip
        note = book.resolve(answer)
        assert note is not None
        await anchor(dispute_anchor(claim))
        await anchor(dispute_anchor(answer))
        for c in carriers.values():
            assert c.settlement is not None
            c.settlement.credit(note)
        payments.append(settle(carriers[VPMN], carriers[HPMN]))

        builder = StatementBuilder(agreement, period_start=agreement.valid_from, period_end=now + 1)
        for ack in acks:
            vpmn, hpmn = ack.ack.sender, ack.ack.recipient
            store = carriers[hpmn].store
            kept = await trio.to_thread.run_sync(store.batch, vpmn, hpmn, ack.ack.sequence)
            assert kept is not None
            builder.add_batch(kept, ack)
        builder.add_dispute(claim, answer)
        made = [p for p in payments if p is not None]
        for payment in made:
            builder.add_payment(*payment)
        statement = builder.build()
        both = SignedStatement(
            statement=statement,
            signatures=tuple(
                keys[p.tadig].sign(statement.signing_message()) for p in agreement.parties
            ),  # type: ignore[arg-type]
        )
        both.verify(agreement)
        for c in carriers.values():
            c.store.close()
        channel = carriers[HPMN].settlement.channel  # type: ignore[union-attr]
        return {
            "network_id": network_id,
            "agreement": agreement.hash.hex(),
            "anchors": len(anchors),
            "channel_deposit": terms.deposit,
            "ledger_deposit": ledger["ledger_deposit"],
            "tap_records": len(tap.records),
            "tap_audit_total_flagged": tap.meta.declared_total_charge != tap.total_charge,
            "nrtrde_records": len(nrtrde.records),
            "cloned_sim_alerts": len(cloned),
            "batches": len(acks),
            "accepted": sum(a.ack.accepted_count for a in acks),
            "returned": sum(len(a.ack.returns) for a in acks),
            "payments": [list(p) for p in made],
            "credit_note": note.amount,
            "channel_sequence": channel.sequence,
            "channel_payee_balance": channel.payee_balance,
            "statement": statement.hash.hex(),
            "statement_directions": [list(d) for d in statement.directions],
            "statement_csv": statement.csv(),
        }


async def self_contained() -> dict[str, Any]:
    from ._devnet import local_devnet

    with tempfile.TemporaryDirectory(prefix="roaming-") as tmp:
        work = Path(tmp)
        async with local_devnet(work / "devnet") as devnet:
            return await run(devnet, work)


async def attached(node: str, faucet: str, rounds: int | None, interval_s: float) -> None:
    from ._roaming_forever import forever, print_line

    with tempfile.TemporaryDirectory(prefix="roaming-") as tmp:
        await forever(node, faucet, Path(tmp), rounds=rounds, interval_s=interval_s, say=print_line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m examples.roaming",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--self-contained", action="store_true", help="on a devnet of its own")
    mode.add_argument("--forever", action="store_true", help="on --node/--faucet until killed")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--node", help="a devnet node's API URL (with --forever)")
    parser.add_argument("--faucet", help="the devnet's faucet URL (with --forever)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between rounds")
    parser.add_argument("--rounds", type=int, help="stop after this many rounds (tests)")
    args = parser.parse_args(argv)
    if args.forever:
        if not args.node or not args.faucet:
            parser.error("--forever needs --node and --faucet")
        try:
            trio.run(attached, args.node, args.faucet, args.rounds, args.interval)
        except KeyboardInterrupt:
            return 130
        return 0
    doc = trio.run(self_contained)
    if args.json:
        print(json.dumps(doc, sort_keys=True))
    else:
        print(doc.pop("statement_csv"))
        print(json.dumps(doc, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
