"""The roaming benchmark's parties and its HPMN process (`benchmarks.roaming` runs it as
`--serve`): the `PAIRS` carrier pairs, their keys, agreements and channel terms, the CPU split
per stage each process reports (`Stages`), and the ten HPMNs, each a `CarrierDesk` on its own
sqlite store behind HTTP, answering each batch with the signed acknowledgement and the payment
proposal, and queuing each acknowledgement for anchoring."""

from __future__ import annotations

import gc
import hashlib
import json
import struct
import sys
import time
from typing import TYPE_CHECKING, Final

import anyio
import anyio.to_thread
import trio
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from benchmarks._roaming_anchors import Anchoring
from payments.channels.core import ChannelTerms
from payments.channels.twoway import TwoWayChannel
from payments.roaming.acknowledgement import SignedAcknowledgement
from payments.roaming.acknowledgement import anchor_payload as ack_anchor
from payments.roaming.agreement import Agreement, Party, SignedAgreement, sign_agreement
from payments.roaming.api import WORKERS
from payments.roaming.batch import decode_batch
from payments.roaming.desk import CarrierDesk
from payments.roaming.ledger_book import LedgerBook
from payments.roaming.rating import Plan, PlanKind, Rounding
from payments.roaming.record import EventType
from payments.roaming.settlement import Settlement
from payments.roaming.store import RoamingStore
from tangle.http.api import serve_api
from tangle.protocol.ids import ChannelId, Signature
from wallet.keys import AddressKey, ExtendedKey

if TYPE_CHECKING:
    from pathlib import Path

    from starlette.requests import Request

GC_THRESHOLD: Final = 100_000
PAIRS: Final = 10
T0: Final = 1_790_000_000


def key_of(role: str, pair: int) -> AddressKey:
    return AddressKey(
        ExtendedKey.from_seed(hashlib.blake2b(f"{role}{pair}".encode(), digest_size=32).digest())
    )


def tadigs(pair: int) -> tuple[str, str]:
    return f"AAV{pair:02d}", f"ZZH{pair:02d}"  # VPMN, HPMN


def plans() -> tuple[Plan, ...]:
    def flat(service: EventType, price: int, per: int, increment: int) -> Plan:
        return Plan(
            service=service, price=price, per=per, increment=increment, minimum=increment,
            rounding=Rounding.UP, kind=PlanKind.FLAT, tiers=(), commitment=0,
        )  # fmt: skip

    return (
        flat(EventType.DATA, 1_000, 1_048_576, 1024),
        flat(EventType.MOC, 2_000, 60, 30),
        flat(EventType.MTC, 500, 60, 30),
        flat(EventType.SMS_MO, 300, 1, 1),
        flat(EventType.SMS_MT, 0, 1, 1),
        flat(EventType.SUPPLEMENTARY, 0, 1, 1),
    )


def agreement(pair: int, batch: int) -> SignedAgreement:
    vpmn, hpmn = tadigs(pair)
    keys = {vpmn: key_of("v", pair), hpmn: key_of("h", pair)}
    a = Agreement(
        version=1, previous=None,
        parties=tuple(Party(tadig=t, key=keys[t].public_key, plans=plans()) for t in sorted(keys)),  # type: ignore[arg-type]
        valid_from=T0 - 86_400, valid_until=T0 + 365 * 86_400, currency="EUR", decimal_places=3,
        tax_bp=0, batch_max_records=batch, batch_max_age_s=60, fraud_charge_4h=10**9,
        dispute_window_s=45 * 86_400,
    )  # fmt: skip
    sigs = tuple(sign_agreement(a, keys[p.tadig]) for p in a.parties)
    return SignedAgreement(agreement=a, signatures=sigs)  # type: ignore[arg-type]


def terms(pair: int) -> ChannelTerms:
    return ChannelTerms(
        network_id=1, channel_id=ChannelId(bytes([pair + 1]) * 32),
        payer=key_of("h", pair).public_key, payee=key_of("v", pair).public_key, deposit=2**62,
        bidirectional=True, challenge_period=100, expiry=10_000,
    )  # fmt: skip


# -- the HPMN process --------------------------------------------------------------------------


class Stages:
    """CPU seconds per stage (`time.thread_time` of the thread doing the work) in one process:
    the split the benchmark reports next to the figures."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.since = time.process_time()
        self.began = time.perf_counter()

    def start(self) -> None:
        """Count the process's CPU time from now, after the setup: what the setup built is
        frozen out of the garbage collector, whose first generation is collected every
        `GC_THRESHOLD` allocations instead of 700 (a TAP file's tree is some 20 tuples an
        event, none in a cycle: at 700 the collector took a quarter of the import's time)."""
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD, 50, 100)
        self.since = time.process_time()
        self.began = time.perf_counter()

    def add(self, stage: str, began: float) -> float:
        """Charge the CPU time since `began` to `stage`; the time now (to chain stages)."""
        now = time.thread_time()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - began
        return now

    def report(self) -> dict[str, float]:
        """The stages, and `other`: the process's CPU time since `start` outside them (HTTP,
        the event loop, the channel store)."""
        other = time.process_time() - self.since - sum(self.seconds.values())
        return {k: round(v, 3) for k, v in (*self.seconds.items(), ("other", other))}


def take_batch(
    desk: CarrierDesk,
    settlement: Settlement,
    stages: Stages,
    body: bytes,
    countersigned: str | None,
) -> tuple[bytes, SignedAcknowledgement, float]:
    """One batch as the HPMN takes it (blocking): decoded; the VPMN's countersignature of the
    previous proposal ("sequence:signature hex") completing that channel state; validated and
    committed by the desk; its acknowledgement settled. The answer (u32 length, the signed
    acknowledgement, then the proposal: u64 sequence, u64 payee balance, the HPMN's signature),
    the acknowledgement and when it was signed (`time.perf_counter`); the CPU time of each
    stage charged to `stages`."""
    began = time.thread_time()
    batch = decode_batch(body)
    began = stages.add("decode", began)
    if countersigned is not None:
        sequence, signature = countersigned.split(":")
        settlement.channel.complete(int(sequence), Signature.from_hex(signature))
    ack = desk.receive_batch(batch, batch.signed.header.sealed_utc)
    signed_at = time.perf_counter()
    began = stages.add("validate_and_commit", began)
    settlement.record(ack)
    proposal = settlement.pay()
    tail = b""
    if proposal is not None:
        p = proposal.proof
        tail = struct.pack("<QQ", p.sequence, p.payee_balance) + proposal.signature
    raw = ack.encode()
    stages.add("settle", began)
    return struct.pack("<I", len(raw)) + raw + tail, ack, signed_at


def hpmn_app(
    desk: CarrierDesk,
    settlement: Settlement,
    stages: Stages,
    anchoring: Anchoring,
    workers: anyio.CapacityLimiter,
) -> Starlette:
    """The desk's intake (`take_batch`, in a worker thread of `workers`), with the payment
    proposal of each accepted batch in the answer. Each acknowledgement is queued for
    anchoring."""

    async def batches(request: Request) -> Response:
        body = await request.body()
        countersigned = request.headers.get("x-countersign")
        answer, ack, signed_at = await anyio.to_thread.run_sync(
            take_batch, desk, settlement, stages, body, countersigned, limiter=workers
        )
        await anchoring.put(ack_anchor(ack), "acknowledgement", signed_at)
        return Response(answer, media_type="application/octet-stream")

    return Starlette(routes=[Route("/batches", batches, methods=["POST"])])


async def hpmn_process(directory: Path, batch: int, api: str) -> None:
    """The HPMNs: set up while the devnet starts; served once the parent's first line says the
    node at `api` answers; their report printed once stdin closes and every anchor is
    confirmed."""
    stages = Stages()
    book = LedgerBook(directory / "hpmn-ledger.db")
    stores = [RoamingStore(directory / f"hpmn{pair}.db") for pair in range(PAIRS)]
    desks = []
    for pair, store in enumerate(stores):
        signed = agreement(pair, batch)
        desk = CarrierDesk(store, signed, key_of("h", pair), window_capacity=2_000_000)
        settlement = Settlement(signed.agreement, TwoWayChannel(terms(pair), key_of("h", pair)))
        desks.append((desk, settlement))
    await trio.to_thread.run_sync(sys.stdin.readline)
    workers = anyio.CapacityLimiter(WORKERS)  # the product's bound (`payments.roaming.api`)
    async with Anchoring(api, book) as anchoring, trio.open_nursery() as nursery:
        ports = [
            await nursery.start(
                serve_api, hpmn_app(desk, settlement, stages, anchoring, workers), "127.0.0.1", 0
            )
            for desk, settlement in desks
        ]
        print(json.dumps(ports), flush=True)
        stages.start()
        await trio.to_thread.run_sync(sys.stdin.read)
        await anchoring.finish()
        nursery.cancel_scope.cancel()
    for store in stores:
        store.close()
    book.close()
    report = {"stages": stages.report(), "anchors": anchoring.queued}
    print(json.dumps({**report, "anchor_latencies": anchoring.latencies}), flush=True)


HASH_COUNT: Final = 200_000
"""Hashes per timing of `blake2b_per_s` (the best of three is kept)."""


def blake2b_per_s(raw: bytes) -> float:
    """BLAKE2b-256 of `raw` (one encoded record) per second on this machine, now: the ceiling
    both roaming benchmarks report their rate against."""
    best = 0.0
    for _ in range(3):
        began = time.perf_counter()
        for _ in range(HASH_COUNT):
            hashlib.blake2b(raw, digest_size=32).digest()
        best = max(best, HASH_COUNT / (time.perf_counter() - began))
    return best
