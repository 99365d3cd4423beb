"""Proof-of-work: the rule every node verifies, and the nonce search a sender runs.

The rule. A message's work covers its 32-byte *work root* (the message without parents and
nonce, see `tangle.message`) and a u64 nonce:

```
work_hash(root, nonce)  = BLAKE2b-256(root || u64le(nonce))       one 128-byte block
work_value(root, nonce) = u64le(work_hash[0:8])                   output word h[0]
work_units(size_bound)  = max(1, ceil(size_bound / WORK_UNIT_BYTES))
target(units, work_per_kib) = U64_MAX // (work_per_kib * units)
valid  <=>  work_value(root, nonce) <= target
```

so a message of n KiB needs about `n * work_per_kib` hashes on average. Verification is one
`hashlib.blake2b` call (`verify_work`).

Two searches, chosen explicitly and tested against each other: `search_reference` is a plain
loop over `hashlib`; `search_range` / `search` run the Numba kernel in `tangle._pow_kernel`, on
one thread or on the Numba thread pool. Both return the *lowest* valid nonce at or after
`start`, so for the same arguments they agree exactly. `solve` runs `search` in a worker thread
for trio code and stops it (within one batch) when the caller is cancelled.
"""

from __future__ import annotations

import functools
import hashlib
import struct
import threading
from typing import Final

import numba
import numpy as np
import trio

from . import _pow_kernel as kernel
from .codec import U64_MAX, require_uint
from .errors import (
    InsufficientWorkError,
    InvalidFieldError,
    NonceSpaceExhaustedError,
    WorkCancelledError,
)

ROOT_SIZE: Final = 32
"""Bytes in a work root."""
WORK_UNIT_BYTES: Final = 1024
"""Message bytes per unit of work: the target scales with the size of the message."""
DEFAULT_BATCH: Final = 1 << 20
"""Nonces per kernel call in `search`: how often it checks for cancellation (tens of ms)."""
MAX_BATCH: Final = 1 << 62
"""The most nonces one kernel call may cover (its counters are int64)."""
REFERENCE_COUNT: Final = 1 << 16
"""Default number of nonces `search_reference` tries."""

_ROOT_WORDS = struct.Struct("<4Q")
_PARALLEL_LOCK = threading.Lock()
"""Serialises parallel kernel calls: Numba's fallback threading layer (workqueue) allows one
caller at a time, and concurrent searches would only compete for the same cores anyway."""


# -- the rule (reference) --------------------------------------------------------------------


def work_hash(root: bytes, nonce: int) -> bytes:
    """BLAKE2b-256 of the root followed by the nonce as 8 little-endian bytes."""
    _require_root(root)
    require_uint("nonce", nonce, U64_MAX)
    return _hash(root, nonce)


def work_value(root: bytes, nonce: int) -> int:
    """The first 8 bytes of the work hash as a little-endian u64; lower is more work."""
    return int.from_bytes(work_hash(root, nonce)[:8], "little")


def verify_work(root: bytes, nonce: int, target: int) -> None:
    """Raise `InsufficientWorkError` unless `work_value(root, nonce) <= target`."""
    _require_root(root)
    require_uint("nonce", nonce, U64_MAX)
    require_uint("target", target, U64_MAX)
    value = int.from_bytes(_hash(root, nonce)[:8], "little")
    if value > target:
        raise InsufficientWorkError(value, target)


def work_units(size_bound: int) -> int:
    """Units of work for a message of `size_bound` bytes: whole KiB, rounded up, at least 1."""
    require_uint("size_bound", size_bound, U64_MAX)
    return max(1, -(-size_bound // WORK_UNIT_BYTES))


def target(units: int, work_per_kib: int) -> int:
    """The largest valid work value for `units` of work at `work_per_kib` hashes per KiB."""
    require_uint("units", units, U64_MAX, minimum=1)
    require_uint("work_per_kib", work_per_kib, U64_MAX, minimum=1)
    return U64_MAX // (work_per_kib * units)


def search_reference(
    root: bytes, target: int, start: int = 0, count: int = REFERENCE_COUNT
) -> int | None:
    """The first valid nonce in [start, start + count), by a plain loop over `hashlib`."""
    _require_search(root, target, start)
    require_uint("count", count, U64_MAX + 1 - start)
    for nonce in range(start, start + count):
        if int.from_bytes(_hash(root, nonce)[:8], "little") <= target:
            return nonce
    return None


# -- the Numba kernel ------------------------------------------------------------------------


def kernel_work_hash(root: bytes, nonce: int) -> bytes:
    """`work_hash` computed by the Numba kernel (for tests that compare it with `hashlib`)."""
    _require_root(root)
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
    _require_search(root, target, start)
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
    _require_search(root, target, start)
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
    """`search` in a worker thread, so the trio event loop keeps running meanwhile.

    If the calling task is cancelled, `solve` returns at once (the thread is abandoned) and
    the search stops at its next batch boundary. Errors are those of `search`.
    """
    cancel = threading.Event()
    run = functools.partial(
        search, root, target, start=start, threads=threads, cancel=cancel, batch=batch
    )
    try:
        return await trio.to_thread.run_sync(run, abandon_on_cancel=True)
    finally:
        cancel.set()


def warm_up() -> None:
    """Compile (or load from Numba's cache) every kernel, with the argument types used here."""
    root = bytes(ROOT_SIZE)
    kernel_work_hash(root, 0)
    search_range(root, 0, 0, 1, threads=1)
    with _PARALLEL_LOCK:  # one chunk: compiles the parallel kernel even with a one-thread pool
        kernel.first_valid_parallel(*_root_words(root), np.uint64(0), np.uint64(0), 1, 1)


# -- helpers ---------------------------------------------------------------------------------


def _require_root(root: bytes) -> None:
    if not isinstance(root, bytes):
        raise InvalidFieldError("root", f"expected bytes, got {type(root).__name__}")
    if len(root) != ROOT_SIZE:
        raise InvalidFieldError("root", f"must be {ROOT_SIZE} bytes, got {len(root)}")


def _require_search(root: bytes, target: int, start: int) -> None:
    _require_root(root)
    require_uint("target", target, U64_MAX)
    require_uint("start", start, U64_MAX)


def _resolve_threads(threads: int | None) -> int:
    if threads is None:
        return max_threads()
    require_uint("threads", threads, max_threads(), minimum=1)
    return threads


def _hash(root: bytes, nonce: int) -> bytes:
    return hashlib.blake2b(root + nonce.to_bytes(8, "little"), digest_size=32).digest()


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
