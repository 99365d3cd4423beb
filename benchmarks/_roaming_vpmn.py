"""The roaming benchmark's visited networks (`benchmarks.roaming` runs them as `--vpmn`): each
process holds some of the `PAIRS` VPMNs (a carrier runs its own; `VPMN_PROCESSES` of them let
the imports use every core, which one process, bound by its interpreter lock, cannot). Before the
clock, a process writes its pairs' TAP files and sets up; it says so on stdout and starts on the
parent's "go" line. Its first report (one JSON line) comes when every payment of its pairs is
durable; its second once every anchor it queued is confirmed.
"""

from __future__ import annotations

import contextlib
import functools
import json
import struct
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.to_thread
import httpx
import trio

from benchmarks._roaming_anchors import Anchoring
from benchmarks._roaming_hpmn import T0, Stages, agreement, key_of, tadigs, terms
from payments.channels.state import Role
from payments.channels.store import ChannelRecord, ChannelStore
from payments.channels.twoway import Proposal, TwoWayChannel
from payments.roaming import tap_scan
from payments.roaming.acknowledgement import SignedAcknowledgement, verify_ack
from payments.roaming.api import WORKERS
from payments.roaming.batch import anchor_payload as batch_anchor
from payments.roaming.batch import encode_batch, seal
from payments.roaming.ledger_book import LedgerBook
from payments.roaming.partner_file import ImportOutcome, ImportPolicy
from payments.roaming.rating import RatingTable
from payments.roaming.record import EventType
from payments.roaming.store import RoamingStore
from payments.roaming.subscriber import SubscriberHasher
from payments.roaming.tap import read_tap
from payments.roaming.tap_events import CallEvent
from payments.roaming.tap_writer import TapFileSpec, write_tap
from tangle.protocol.channel import BalanceProof
from tangle.protocol.ids import ChannelId, Signature

if TYPE_CHECKING:
    from collections.abc import Callable

    from payments.roaming.partner_file import ImportedFile

VPMN_PROCESSES: Final = 2
"""Processes the ten VPMNs are split among (the machine's two cores)."""
FILE_EVENTS: Final = 5_000
"""Events per TAP transfer batch file the VPMN's billing system writes."""
KEEP_ALIVE: Final = httpx.Limits(keepalive_expiry=2.0)
"""A pair waits for the other pairs' imports between batches: its idle connection is dropped
before the server's keep-alive timeout (hypercorn's 5 s) can close it under a request."""
HASHER: Final = SubscriberHasher(salt=b"benchmark-salt-0123")


def tap_files(pair: int, count: int, batch: int) -> list[bytes]:
    """What the pair's VPMN billing system hands over: its roamers' data sessions, each rated
    under the agreement, as TAP 3.12 transfer batches of `FILE_EVENTS` events (written before
    the clock starts: this is the input)."""
    vpmn, hpmn = tadigs(pair)
    a = agreement(pair, batch).agreement
    plan = a.party(vpmn).plan(EventType.DATA)
    files = []
    for number, first in enumerate(range(0, count, FILE_EVENTS), start=1):
        events = []
        for index in range(first, min(first + FILE_EVENTS, count)):
            up, down = 1_000 + index % 5_000, 50_000 + index % 70_000
            events.append(
                CallEvent(
                    offset=0,
                    event_type=EventType.DATA,
                    imsi=f"90101{index % 100_000:010d}",
                    msisdn=None,
                    start_utc=T0 + index,
                    duration_s=60,
                    volume_up=up,
                    volume_down=down,
                    apn="iot.example",
                    charge=plan.price_of(plan.billed(up + down)),
                )
            )
        spec = TapFileSpec(
            sender=vpmn, recipient=hpmn, sequence=number, created_utc=T0 + first + FILE_EVENTS,
            currency=a.currency, decimal_places=a.decimal_places, utc_offset_s=3_600,
        )  # fmt: skip
        files.append(write_tap(spec, events))
    return files


async def vpmn_pair(
    pair: int,
    http: httpx.AsyncClient,
    files: list[bytes],
    batch: int,
    store: ChannelStore,
    roaming: RoamingStore,
    latencies: list[tuple[float, int]],
    charged: list[int],
    stages: Stages,
    anchoring: Anchoring,
    workers: anyio.CapacityLimiter,
) -> None:
    signed = agreement(pair, batch)
    a = signed.agreement
    table = RatingTable(a)
    policy = ImportPolicy(hasher=HASHER)
    channel = TwoWayChannel(terms(pair), key_of("v", pair))
    key = key_of("v", pair)
    headers: dict[str, str] = {}
    sequence = 0

    await trio.to_thread.run_sync(roaming.put_agreement, signed)

    def import_file(raw: bytes) -> tuple[ImportedFile, range]:
        began = time.thread_time()
        imported = read_tap(raw, policy)
        began = stages.add("tap_import", began)
        if roaming.import_file(imported) is not ImportOutcome.NEW:
            raise SystemExit(f"pair {pair}: file {imported.meta.sequence} imported before")
        ids = roaming.file_ids(imported.meta)
        stages.add("store_file", began)
        return imported, ids

    def save(stage: str, call: Callable[[], object]) -> None:
        began = time.thread_time()
        call()
        stages.add(stage, began)

    for raw in files:
        imported, ids = await anyio.to_thread.run_sync(import_file, raw, limiter=workers)
        began = time.thread_time()
        if imported.total_charge != imported.meta.declared_total_charge:
            raise SystemExit(f"pair {pair}: file {imported.meta.sequence} audit total")
        charges = table.charges(imported.records, tadigs(pair))
        if charges != [r.charge for r in imported.records]:
            raise SystemExit(f"pair {pair}: a record not rated under the agreement")
        stages.add("rate", began)
        for first in range(0, len(imported.records), batch):
            began = time.thread_time()
            records = imported.records[first : first + batch]
            sequence += 1
            b = seal(a, key, records, sequence=sequence, now=records[-1].start_utc + 1)
            signed_at = time.perf_counter()
            content = encode_batch(b)
            stages.add("seal", began)
            await trio.to_thread.run_sync(
                save,
                "store_batch",
                functools.partial(roaming.save_batch, b, ids[first : first + batch]),
            )
            await anchoring.put(batch_anchor(b.signed), "batch", signed_at)
            response = await http.post("/batches", content=content, headers=headers)
            response.raise_for_status()
            began = time.thread_time()
            body = response.content
            (n,) = struct.unpack_from("<I", body)
            ack = SignedAcknowledgement.decode(body[4 : 4 + n])
            verify_ack(ack, a)
            if ack.ack.accepted_count != len(records):
                raise SystemExit(f"pair {pair} batch {sequence}: {ack.ack.returns[:3]}")
            tail = body[4 + n :]
            sequence_, balance = struct.unpack_from("<QQ", tail)
            proof = BalanceProof(
                network_id=1, channel_id=channel.terms.channel_id, sequence=sequence_,
                payee_balance=balance,
            )  # fmt: skip
            state = channel.countersign(Proposal(proof=proof, signature=Signature(tail[-64:])))
            stages.add("verify_and_countersign", began)
            await trio.to_thread.run_sync(
                save, "store_ack", functools.partial(roaming.save_ack, ack)
            )
            await store.save(ChannelRecord.of(channel, Role.PAYEE))
            assert state.payee_signature is not None
            headers = {"x-countersign": f"{proof.sequence}:{state.payee_signature.hex()}"}
            latencies.append((time.perf_counter() - signed_at, len(records)))
            charged.append(b.signed.header.total_charge)


async def run_vpmns(
    pairs: list[int], ports: list[int], files: dict[int, list[bytes]], batch: int,
    directory: Path, api: str,
) -> None:  # fmt: skip
    """The process's VPMNs (see the module docstring)."""
    stages = Stages()
    latencies: list[tuple[float, int]] = []
    charged: list[int] = []
    name = "-".join(map(str, pairs))
    async with contextlib.AsyncExitStack() as stack:
        store = await stack.enter_async_context(ChannelStore(directory / f"vpmn-{name}.db"))
        book = stack.enter_context(LedgerBook(directory / f"vpmn-ledger-{name}.db"))
        roaming = {p: stack.enter_context(RoamingStore(directory / f"vpmn{p}.db")) for p in pairs}
        https = {
            p: await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{ports[p]}", timeout=120, limits=KEEP_ALIVE
                )
            )
            for p in pairs
        }
        anchoring = await stack.enter_async_context(Anchoring(api, book))
        tap_scan.warm_up()  # the TAP kernel loaded before the clock, as the PoW kernel is
        print(json.dumps({"ready": True}), flush=True)
        if await trio.to_thread.run_sync(sys.stdin.readline) != "go\n":
            return  # the parent gave up before the start
        stages.start()
        workers = anyio.CapacityLimiter(WORKERS)
        async with trio.open_nursery() as nursery:
            for p in pairs:
                nursery.start_soon(
                    vpmn_pair, p, https[p], files[p], batch, store, roaming[p], latencies,
                    charged, stages, anchoring, workers,
                )  # fmt: skip
        cpu = stages.report()
        paid = 0
        for p in pairs:
            if roaming[p].pending_rows(*tadigs(p), 1):
                raise SystemExit(f"pair {p}: a record imported and never batched")
            record = await store.load(ChannelId(bytes([p + 1]) * 32), Role.PAYEE)
            latest = None if record is None else record.latest
            paid += 0 if latest is None else latest.proof.payee_balance
        if paid != sum(charged):
            raise SystemExit(f"paid {paid}, the batches charged {sum(charged)}")
        report: dict[str, Any] = {
            "paid": paid, "latencies": latencies, "cpu": cpu,
            "tap_files": sum(len(files[p]) for p in pairs),
            "tap_bytes": sum(len(raw) for p in pairs for raw in files[p]),
        }  # fmt: skip
        print(json.dumps(report), flush=True)
        await anchoring.finish()
        tail = stages.report()["other"] - cpu["other"]
    final = {
        "anchors": anchoring.queued, "anchor_latencies": anchoring.latencies,
        "after_last_payment": round(tail, 3),
    }  # fmt: skip
    print(json.dumps(final), flush=True)


def vpmn_process(spec: str) -> None:
    """`--vpmn SPEC`: SPEC is JSON with the directory, the pairs, the records per pair, the
    batch size, the node's API and the HPMNs' ports."""
    s = json.loads(spec)
    pairs = [int(p) for p in s["pairs"]]
    files = {p: tap_files(p, int(s["records"]), int(s["batch"])) for p in pairs}
    run = functools.partial(
        run_vpmns, pairs, [int(p) for p in s["ports"]], files, int(s["batch"]),
        Path(s["directory"]), str(s["api"]),
    )  # fmt: skip
    trio.run(run)
