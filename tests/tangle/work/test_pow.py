"""Proof-of-work: the rule, and the Numba kernel held to the `hashlib` reference bit for bit."""

from __future__ import annotations

import hashlib
import struct
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from tangle.errors import (
    InsufficientWorkError,
    InvalidFieldError,
    NonceSpaceExhaustedError,
    WorkCancelledError,
)
from tangle.protocol.codec import U64_MAX
from tangle.protocol.pow import (
    search_reference,
    target,
    verify_work,
    work_hash,
    work_units,
    work_value,
)
from tangle.work import _kernel as _pow_kernel
from tangle.work import kernel_work_hash, max_threads, search, search_range, solve, solver

if TYPE_CHECKING:
    from collections.abc import Callable

roots = st.binary(min_size=32, max_size=32)
nonces = st.integers(0, U64_MAX)
few = settings(max_examples=40, deadline=None)
"""Each example runs a Python loop of a few thousand hashes: keep the count small."""

ROOT = hashlib.blake2b(b"tanglepay pow tests", digest_size=32).digest()
EASY = U64_MAX // 500
"""About one valid nonce in 500."""
THREAD_COUNTS = sorted({1, max_threads()})


# -- the rule --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("root", "nonce", "digest"),
    [
        (bytes(32), 0, "4a1931803561f431decab002e7425f0a8531d5e456a1a47fd9998a2530c0f800"),
        (
            bytes(range(32)),
            0x0123456789ABCDEF,
            "76f32b62d3b4980371de64dc81a437fd55b661b7a49dfd4a21e7403d80ed800b",
        ),
        (b"\xff" * 32, U64_MAX, "6002773786391ba081a87d2bf0139514627f79b1b8a4696ad7bee135e1646680"),
    ],
    ids=["zeros", "counting", "ones"],
)
def test_known_work_hashes(root: bytes, nonce: int, digest: str) -> None:
    assert work_hash(root, nonce).hex() == digest
    assert kernel_work_hash(root, nonce).hex() == digest
    assert work_value(root, nonce) == int.from_bytes(bytes.fromhex(digest)[:8], "little")


@settings(max_examples=300, deadline=None)
@given(roots, nonces)
def test_kernel_hash_is_blake2b_256_of_root_and_nonce(root: bytes, nonce: int) -> None:
    expected = hashlib.blake2b(root + nonce.to_bytes(8, "little"), digest_size=32).digest()
    assert work_hash(root, nonce) == expected
    assert kernel_work_hash(root, nonce) == expected
    assert work_value(root, nonce) == int.from_bytes(expected[:8], "little")


@pytest.mark.parametrize(
    ("size_bound", "units"),
    [
        (0, 1),
        (1, 1),
        (1023, 1),
        (1024, 1),
        (1025, 2),
        (2048, 2),
        (32 * 1024, 32),
        (32 * 1024 + 1, 33),
    ],
)
def test_work_units_are_whole_kib_rounded_up(size_bound: int, units: int) -> None:
    assert work_units(size_bound) == units


def test_target_divides_the_u64_range() -> None:
    assert target(1, 1) == U64_MAX
    assert target(work_units(0), 1) == U64_MAX
    assert target(work_units(1025), 1) == U64_MAX // 2
    assert target(work_units(32 * 1024), 1) == U64_MAX // 32
    assert target(32, 1000) == U64_MAX // 32_000
    assert target(U64_MAX, 2) == 0


@given(roots, nonces)
def test_verify_work_accepts_exactly_values_up_to_the_target(root: bytes, nonce: int) -> None:
    value = work_value(root, nonce)
    verify_work(root, nonce, value)
    verify_work(root, nonce, U64_MAX)
    if value > 0:
        with pytest.raises(InsufficientWorkError) as raised:
            verify_work(root, nonce, value - 1)
        assert (raised.value.value, raised.value.target) == (value, value - 1)


# -- search: reference and kernel agree ------------------------------------------------------


@few
@given(
    root=roots,
    start=st.one_of(st.integers(0, U64_MAX - 3000), st.just(U64_MAX - 2999)),
    per=st.integers(1, 5000),
)
def test_every_search_finds_the_reference_nonce(root: bytes, start: int, per: int) -> None:
    tgt = U64_MAX // per
    expected = search_reference(root, tgt, start, 3000)
    for threads in THREAD_COUNTS:
        assert search_range(root, tgt, start, 3000, threads=threads) == expected
        if expected is not None:
            assert search(root, tgt, start=start, threads=threads, batch=700) == expected


@pytest.mark.parametrize("chunks", [1, 2, 3, 7, 64])
def test_parallel_kernel_returns_the_lowest_hit_of_all_chunks(chunks: int) -> None:
    r0, r1, r2, r3 = (np.uint64(word) for word in struct.unpack("<4Q", ROOT))
    for per in (2, 50, 500, 5000):
        tgt = U64_MAX // per
        expected = search_reference(ROOT, tgt, 0, 20_000)
        assert expected is not None
        for count in (expected + 1, expected + expected // 2 + 1, 20_000):
            found = _pow_kernel.first_valid_parallel(
                r0, r1, r2, r3, np.uint64(tgt), np.uint64(0), count, chunks
            )
            assert found == expected


@pytest.mark.parametrize("threads", THREAD_COUNTS)
def test_search_returns_the_first_valid_nonce_after_start(threads: int) -> None:
    first = search(ROOT, EASY, threads=threads)
    assert first == search_reference(ROOT, EASY, 0, 1 << 16)
    second = search(ROOT, EASY, start=first + 1, threads=threads, batch=64)
    assert second == search_reference(ROOT, EASY, first + 1, 1 << 16)
    verify_work(ROOT, first, EASY)
    verify_work(ROOT, second, EASY)


@pytest.mark.parametrize("threads", THREAD_COUNTS)
def test_search_at_the_top_of_the_nonce_range(threads: int) -> None:
    assert search_range(ROOT, U64_MAX, U64_MAX, 1, threads=threads) == U64_MAX
    assert search(ROOT, U64_MAX, start=U64_MAX, threads=threads) == U64_MAX
    assert search_range(ROOT, 0, U64_MAX, 0, threads=threads) is None
    with pytest.raises(NonceSpaceExhaustedError):
        search(ROOT, 0, start=U64_MAX - 5000, threads=threads, batch=1024)


# -- cancellation ----------------------------------------------------------------------------


class _SetOnCheck(threading.Event):
    """An event that sets itself the `checks`-th time a search looks at it."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.checks = checks

    def is_set(self) -> bool:
        self.checks -= 1
        if self.checks == 0:
            self.set()
        return super().is_set()


def test_search_checks_for_cancellation_before_every_batch() -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(WorkCancelledError, match=r"at nonce 10$"):
        search(ROOT, 0, start=10, cancel=cancel)
    with pytest.raises(WorkCancelledError, match=r"at nonce 3000$"):
        search(ROOT, 0, cancel=_SetOnCheck(4), batch=1000)


def test_search_cancelled_from_another_thread_stops_promptly() -> None:
    cancel = threading.Event()
    timer = threading.Timer(0.05, cancel.set)
    began = time.monotonic()
    timer.start()
    with pytest.raises(WorkCancelledError):
        search(ROOT, 0, cancel=cancel)
    timer.join()
    assert time.monotonic() - began < 5


async def test_solve_finds_the_reference_nonce() -> None:
    assert await solve(ROOT, EASY, start=7) == search_reference(ROOT, EASY, 7, 1 << 16)


async def test_cancelling_solve_stops_the_search(monkeypatch: pytest.MonkeyPatch) -> None:
    started, finished = threading.Event(), threading.Event()
    outcome: list[BaseException] = []

    def spy(*args: Any, **kwargs: Any) -> int:
        started.set()
        try:
            return search(*args, **kwargs)
        except WorkCancelledError as error:
            outcome.append(error)
            raise
        finally:
            finished.set()

    monkeypatch.setattr(solver, "search", spy)
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_solve_impossible)
            # The event loop is free while the worker thread searches (target 0 never ends).
            await trio.to_thread.run_sync(started.wait)
            scope.cancel()
    assert scope.cancelled_caught
    assert await trio.to_thread.run_sync(finished.wait, 10.0)
    assert len(outcome) == 1
    assert isinstance(outcome[0], WorkCancelledError)


async def _solve_impossible() -> None:
    await solve(ROOT, 0, batch=1 << 16)


# -- bad arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: work_hash(bytes(31), 0), id="short-root"),
        pytest.param(lambda: work_hash(bytes(33), 0), id="long-root"),
        pytest.param(lambda: work_hash(bytearray(32), 0), id="root-not-bytes"),
        pytest.param(lambda: work_hash(ROOT, -1), id="negative-nonce"),
        pytest.param(lambda: work_hash(ROOT, U64_MAX + 1), id="nonce-above-u64"),
        pytest.param(lambda: kernel_work_hash(ROOT, U64_MAX + 1), id="kernel-nonce-above-u64"),
        pytest.param(lambda: verify_work(ROOT, 0, -1), id="negative-target"),
        pytest.param(lambda: verify_work(ROOT, 0, U64_MAX + 1), id="target-above-u64"),
        pytest.param(lambda: verify_work(bytes(5), 0, 0), id="verify-short-root"),
        pytest.param(lambda: work_units(-1), id="negative-size"),
        pytest.param(lambda: target(1, 0), id="zero-work-per-kib"),
        pytest.param(lambda: target(0, 1), id="zero-units"),
        pytest.param(lambda: target(1, True), id="bool-work-per-kib"),
        pytest.param(lambda: search_reference(ROOT, 0, -1, 1), id="negative-start"),
        pytest.param(lambda: search_reference(ROOT, 0, U64_MAX, 2), id="reference-past-u64"),
        pytest.param(lambda: search_reference(ROOT, 0, 0, -1), id="negative-count"),
        pytest.param(lambda: search_range(ROOT, 0, U64_MAX, 2), id="range-past-u64"),
        pytest.param(lambda: search_range(ROOT, 0, 0, 1, threads=0), id="zero-threads"),
        pytest.param(
            lambda: search_range(ROOT, 0, 0, 1, threads=max_threads() + 1), id="too-many-threads"
        ),
        pytest.param(lambda: search(ROOT, U64_MAX + 1), id="search-target-above-u64"),
        pytest.param(lambda: search(ROOT, 0, batch=0), id="zero-batch"),
        pytest.param(lambda: search(ROOT, 0, start=U64_MAX + 1), id="start-above-u64"),
    ],
)
def test_bad_arguments_raise_invalid_field(call: Callable[[], object]) -> None:
    with pytest.raises(InvalidFieldError):
        call()
