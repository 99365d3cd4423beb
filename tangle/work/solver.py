"""The nonce search a sender runs: the Numba kernel on one thread or the Numba thread pool.

`search_range` / `search` run the kernel in `tangle.work._kernel`; like
`tangle.protocol.pow.search_reference` (the plain loop they are tested against) they return the
*lowest* valid nonce at or after `start`, so for the same arguments they agree exactly. `solve`
runs `search` in a worker thread for async code (under trio or asyncio, through anyio) and stops
it (within one batch) when the caller is cancelled. It is the one solver of the node's PoW
endpoint, the coordinator, the devnet traffic and the wallet.
"""

from __future__ import annotations

import functools
import struct
import threading
from typing import Final

import anyio.to_thread
import numba
import numpy as np

from tangle.errors import NonceSpaceExhaustedError, WorkCancelledError
from tangle.protocol.codec import U64_MAX, require_uint
from tangle.protocol.pow import ROOT_SIZE, require_root, require_search, verify_work

from . import _kernel as kernel

DEFAULT_BATCH: Final = 1 << 20
"""Nonces per kernel call in `search`: how often it checks for cancellation (tens of ms)."""
MAX_BATCH: Final = 1 << 62
"""The most nonces one kernel call may cover (its counters are int64)."""

_ROOT_WORDS = struct.Struct("<4Q")
_PARALLEL_LOCK = threading.Lock()
"""Serialises parallel kernel calls: Numba's fallback threading layer (workqueue) allows one
caller at a time, and concurrent searches would only compete for the same cores anyway."""


def kernel_work_hash(root: bytes, nonce: int) -> bytes:
    """`work_hash` computed by the Numba kernel (for tests that compare it with `hashlib`)."""
    require_root(root)
    require_uint("nonce", nonce, U64_MAX)
    words = kernel.work_hash_words(*_root_words(root), np.uint64(nonce))
    return _ROOT_WORDS.pack(*(int(word) for word in words))


def max_threads() -> int:
    """The size of the Numba thread pool: the most threads a search can use."""
    threads: int = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]  # set at runtime
    return threads


def search_range(
    root: bytes, target: int, start: int, count: int, *, threads: int | None = None
) -> int | None:
    """The first valid nonce in [start, start + count), by one kernel call, else None.

    `threads` is 1 for the single-thread kernel, or up to `max_threads()` (the default) for the
    parallel one, which splits the range into one chunk per thread and returns the lowest hit.
    """
    require_search(root, target, start)
    require_uint("count", count, min(MAX_BATCH, U64_MAX + 1 - start))
    threads = _resolve_threads(threads)
    if count == 0:
        return None
    offset = _first_valid(_root_words(root), np.uint64(target), np.uint64(start), count, threads)
    return None if offset < 0 else start + offset


def search(
    root: bytes,
    target: int,
    *,
    start: int = 0,
    threads: int | None = None,
    cancel: threading.Event | None = None,
    batch: int = DEFAULT_BATCH,
) -> int:
    """The first valid nonce at or after `start`, searched `batch` nonces per kernel call.

    Raises `WorkCancelledError` when `cancel` is set (checked before each batch) and
    `NonceSpaceExhaustedError` when the nonces up to U64_MAX are exhausted. The result is
    checked with `verify_work`, so a nonce that does not meet the target is never returned.
    """
    require_search(root, target, start)
    threads = _resolve_threads(threads)
    require_uint("batch", batch, MAX_BATCH, minimum=1)
    nonce = start
    while True:
        if cancel is not None and cancel.is_set():
            raise WorkCancelledError(f"nonce search cancelled at nonce {nonce}")
        count = min(batch, U64_MAX - nonce + 1)
        found = search_range(root, target, nonce, count, threads=threads)
        if found is not None:
            verify_work(root, found, target)
            return found
        if nonce + count > U64_MAX:
            raise NonceSpaceExhaustedError(
                f"nonce range exhausted: no valid nonce in [{start}, 2**64)"
            )
        nonce += count


async def solve(
    root: bytes,
    target: int,
    *,
    start: int = 0,
    threads: int | None = None,
    batch: int = DEFAULT_BATCH,
) -> int:
    """`search` in a worker thread, so the event loop (trio or asyncio) keeps running.

    If the calling task is cancelled, `solve` returns at once (the thread is abandoned) and
    the search stops at its next batch boundary. Errors are those of `search`.
    """
    cancel = threading.Event()
    run = functools.partial(
        search, root, target, start=start, threads=threads, cancel=cancel, batch=batch
    )
    try:
        return await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
    finally:
        cancel.set()


def warm_up() -> None:
    """Compile (or load from Numba's cache) every kernel, with the argument types used here."""
    root = bytes(ROOT_SIZE)
    kernel_work_hash(root, 0)
    search_range(root, 0, 0, 1, threads=1)
    with _PARALLEL_LOCK:  # one chunk: compiles the parallel kernel even with a one-thread pool
        kernel.first_valid_parallel(*_root_words(root), np.uint64(0), np.uint64(0), 1, 1)


def _resolve_threads(threads: int | None) -> int:
    if threads is None:
        return max_threads()
    require_uint("threads", threads, max_threads(), minimum=1)
    return threads


def _root_words(root: bytes) -> kernel.Words:
    r0, r1, r2, r3 = _ROOT_WORDS.unpack(root)
    return np.uint64(r0), np.uint64(r1), np.uint64(r2), np.uint64(r3)


def _first_valid(
    words: kernel.Words, target: np.uint64, start: np.uint64, count: int, threads: int
) -> int:
    """The kernel call: offset of the first valid nonce in the range, or -1."""
    if threads == 1:
        return kernel.first_valid(*words, target, start, count)
    with _PARALLEL_LOCK:
        previous = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            return kernel.first_valid_parallel(*words, target, start, count, threads)
        finally:
            numba.set_num_threads(previous)
