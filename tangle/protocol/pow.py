"""Proof-of-work: the rule every node verifies.

A message's work covers its 32-byte *work root* (the message without parents and nonce, see
`tangle.protocol.message`) and a u64 nonce:

```
work_hash(root, nonce)  = BLAKE2b-256(root || u64le(nonce))       one 128-byte block
work_value(root, nonce) = u64le(work_hash[0:8])                   output word h[0]
work_units(size_bound)  = max(1, ceil(size_bound / WORK_UNIT_BYTES))
target(units, work_per_kib) = U64_MAX // (work_per_kib * units)
valid  <=>  work_value(root, nonce) <= target
```

so a message of n KiB needs about `n * work_per_kib` hashes on average. Verification is one
`hashlib.blake2b` call (`verify_work`). `search_reference` is the plain-loop nonce search the
fast solver in `tangle.work` is tested against; this module loads neither Numba nor threads.
"""

from __future__ import annotations

import hashlib
from typing import Final

from tangle.errors import InsufficientWorkError, InvalidFieldError

from .codec import U64_MAX, require_uint

ROOT_SIZE: Final = 32
"""Bytes in a work root."""
WORK_UNIT_BYTES: Final = 1024
"""Message bytes per unit of work: the target scales with the size of the message."""
REFERENCE_COUNT: Final = 1 << 16
"""Default number of nonces `search_reference` tries."""


def work_hash(root: bytes, nonce: int) -> bytes:
    """BLAKE2b-256 of the root followed by the nonce as 8 little-endian bytes."""
    require_root(root)
    require_uint("nonce", nonce, U64_MAX)
    return _hash(root, nonce)


def work_value(root: bytes, nonce: int) -> int:
    """The first 8 bytes of the work hash as a little-endian u64; lower is more work."""
    return int.from_bytes(work_hash(root, nonce)[:8], "little")


def verify_work(root: bytes, nonce: int, target: int) -> None:
    """Raise `InsufficientWorkError` unless `work_value(root, nonce) <= target`."""
    require_root(root)
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
    require_search(root, target, start)
    require_uint("count", count, U64_MAX + 1 - start)
    for nonce in range(start, start + count):
        if int.from_bytes(_hash(root, nonce)[:8], "little") <= target:
            return nonce
    return None


def require_root(root: bytes) -> None:
    """Raise `InvalidFieldError` unless `root` is `ROOT_SIZE` bytes."""
    if not isinstance(root, bytes):
        raise InvalidFieldError("root", f"expected bytes, got {type(root).__name__}")
    if len(root) != ROOT_SIZE:
        raise InvalidFieldError("root", f"must be {ROOT_SIZE} bytes, got {len(root)}")


def require_search(root: bytes, target: int, start: int) -> None:
    """Raise `InvalidFieldError` unless the arguments of a nonce search are in range."""
    require_root(root)
    require_uint("target", target, U64_MAX)
    require_uint("start", start, U64_MAX)


def _hash(root: bytes, nonce: int) -> bytes:
    return hashlib.blake2b(root + nonce.to_bytes(8, "little"), digest_size=32).digest()
