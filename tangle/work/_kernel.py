"""The Numba kernel behind `tangle.work`: BLAKE2b-256 of `root || nonce`, one block, unrolled.

The work hash always compresses exactly one 128-byte block: message words m[0..3] are the root,
m[4] is the nonce, m[5..15] are zero, the byte counter is 40 and the final flag is set. This
module writes that single compression out for Numba:

* `_g` is the G mixing function on four state words; `_round` is one round, with the message
  words passed already permuted by that round's SIGMA row, so the twelve `_round` calls in
  `_compress` spell out the RFC 7693 schedule literally and every word index is a compile-time
  name. Zero words are constants that LLVM folds away.
* `_compress` is inlined into its callers at Numba IR level; `_round` and `_g` are small enough
  for LLVM to inline, so each kernel ends up as one straight-line block over local uint64
  scalars, with no arrays, no bounds checks and rotations that lower to single instructions.
* `first_valid` scans nonces in blocks of `_BLOCK`: a branch-free pass counts the hits of a
  block (LLVM vectorises it across nonces, 8 lanes with AVX-512), and only a block with a hit
  is scanned again for its first valid nonce. `first_valid_parallel` splits a range into chunks
  over the Numba thread pool with `prange` and returns the lowest hit of all chunks.

Arguments must keep one set of types so Numba compiles each kernel once: root words, target
and start as `np.uint64`, counts as Python `int` (int64). `tangle.work.solver` does the conversion.
"""

from __future__ import annotations

import numba
import numpy as np

State = tuple[np.uint64, ...]
"""The sixteen working words v[0..15] of one compression."""
Words = tuple[np.uint64, np.uint64, np.uint64, np.uint64]
"""Four words: a root, the output h[0..3], or the a, b, c, d of one G step."""

IV0 = np.uint64(0x6A09E667F3BCC908)
IV1 = np.uint64(0xBB67AE8584CAA73B)
IV2 = np.uint64(0x3C6EF372FE94F82B)
IV3 = np.uint64(0xA54FF53A5F1D36F1)
IV4 = np.uint64(0x510E527FADE682D1)
IV5 = np.uint64(0x9B05688C2B3E6C1F)
IV6 = np.uint64(0x1F83D9ABFB41BD6B)
IV7 = np.uint64(0x5BE0CD19137E2179)

H0 = IV0 ^ np.uint64(0x0101_0020)
"""h[0] after the parameter block: digest length 32, key length 0, fanout 1, depth 1."""
V12 = IV4 ^ np.uint64(40)
"""v[12] = IV[4] ^ t, where the byte counter t is 40: 32 root bytes and 8 nonce bytes."""
V14 = ~IV6
"""v[14] = IV[6] inverted: the block is the final one."""
_ZERO = np.uint64(0)
_BLOCK = 64
"""Nonces per vectorised block in `first_valid`."""


@numba.njit(cache=True, nogil=True, inline="always")
def _rotr(x: np.uint64, n: int) -> np.uint64:
    return (x >> np.uint64(n)) | (x << np.uint64(64 - n))


@numba.njit(cache=True, nogil=True)
def _g(a: np.uint64, b: np.uint64, c: np.uint64, d: np.uint64, x: np.uint64, y: np.uint64) -> Words:
    a = a + b + x
    d = _rotr(d ^ a, 32)
    c = c + d
    b = _rotr(b ^ c, 24)
    a = a + b + y
    d = _rotr(d ^ a, 16)
    c = c + d
    b = _rotr(b ^ c, 63)
    return a, b, c, d


@numba.njit(cache=True, nogil=True)
def _round(
    v: State,
    s0: np.uint64,
    s1: np.uint64,
    s2: np.uint64,
    s3: np.uint64,
    s4: np.uint64,
    s5: np.uint64,
    s6: np.uint64,
    s7: np.uint64,
    s8: np.uint64,
    s9: np.uint64,
    s10: np.uint64,
    s11: np.uint64,
    s12: np.uint64,
    s13: np.uint64,
    s14: np.uint64,
    s15: np.uint64,
) -> State:
    v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15 = v
    v0, v4, v8, v12 = _g(v0, v4, v8, v12, s0, s1)
    v1, v5, v9, v13 = _g(v1, v5, v9, v13, s2, s3)
    v2, v6, v10, v14 = _g(v2, v6, v10, v14, s4, s5)
    v3, v7, v11, v15 = _g(v3, v7, v11, v15, s6, s7)
    v0, v5, v10, v15 = _g(v0, v5, v10, v15, s8, s9)
    v1, v6, v11, v12 = _g(v1, v6, v11, v12, s10, s11)
    v2, v7, v8, v13 = _g(v2, v7, v8, v13, s12, s13)
    v3, v4, v9, v14 = _g(v3, v4, v9, v14, s14, s15)
    return v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15


@numba.njit(cache=True, nogil=True, inline="always")
def _compress(m0: np.uint64, m1: np.uint64, m2: np.uint64, m3: np.uint64, m4: np.uint64) -> State:
    """The working words after the twelve rounds over the block (root words, nonce, zeros)."""
    m5 = m6 = m7 = m8 = m9 = m10 = m11 = m12 = m13 = m14 = m15 = _ZERO
    v: State = (H0, IV1, IV2, IV3, IV4, IV5, IV6, IV7, IV0, IV1, IV2, IV3, V12, IV5, V14, IV7)
    v = _round(v, m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15)
    v = _round(v, m14, m10, m4, m8, m9, m15, m13, m6, m1, m12, m0, m2, m11, m7, m5, m3)
    v = _round(v, m11, m8, m12, m0, m5, m2, m15, m13, m10, m14, m3, m6, m7, m1, m9, m4)
    v = _round(v, m7, m9, m3, m1, m13, m12, m11, m14, m2, m6, m5, m10, m4, m0, m15, m8)
    v = _round(v, m9, m0, m5, m7, m2, m4, m10, m15, m14, m1, m11, m12, m6, m8, m3, m13)
    v = _round(v, m2, m12, m6, m10, m0, m11, m8, m3, m4, m13, m7, m5, m15, m14, m1, m9)
    v = _round(v, m12, m5, m1, m15, m14, m13, m4, m10, m0, m7, m6, m3, m9, m2, m8, m11)
    v = _round(v, m13, m11, m7, m14, m12, m1, m3, m9, m5, m0, m15, m4, m8, m6, m2, m10)
    v = _round(v, m6, m15, m14, m9, m11, m3, m0, m8, m12, m2, m13, m7, m1, m4, m10, m5)
    v = _round(v, m10, m2, m8, m4, m7, m6, m1, m5, m15, m11, m9, m14, m3, m12, m13, m0)
    v = _round(v, m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15)
    v = _round(v, m14, m10, m4, m8, m9, m15, m13, m6, m1, m12, m0, m2, m11, m7, m5, m3)
    return v


@numba.njit(cache=True, nogil=True, inline="always")
def _value(
    r0: np.uint64, r1: np.uint64, r2: np.uint64, r3: np.uint64, nonce: np.uint64
) -> np.uint64:
    """The work value: output word h[0] = H0 ^ v[0] ^ v[8]."""
    v = _compress(r0, r1, r2, r3, nonce)
    return H0 ^ v[0] ^ v[8]


@numba.njit(cache=True, nogil=True)
def work_hash_words(
    r0: np.uint64, r1: np.uint64, r2: np.uint64, r3: np.uint64, nonce: np.uint64
) -> Words:
    """The four output words h[0..3] of the work hash (its 32 bytes, little-endian)."""
    v = _compress(r0, r1, r2, r3, nonce)
    return H0 ^ v[0] ^ v[8], IV1 ^ v[1] ^ v[9], IV2 ^ v[2] ^ v[10], IV3 ^ v[3] ^ v[11]


@numba.njit(cache=True, nogil=True)
def first_valid(
    r0: np.uint64,
    r1: np.uint64,
    r2: np.uint64,
    r3: np.uint64,
    target: np.uint64,
    start: np.uint64,
    count: int,
) -> int:
    """The offset of the first nonce in [start, start + count) with value <= target, else -1."""
    for lo in range(0, count, _BLOCK):
        n = min(_BLOCK, count - lo)
        base = start + np.uint64(lo)
        hits = 0
        for j in range(n):
            if _value(r0, r1, r2, r3, base + np.uint64(j)) <= target:
                hits += 1
        if hits:
            for j in range(n):
                if _value(r0, r1, r2, r3, base + np.uint64(j)) <= target:
                    return lo + j
    return -1


@numba.njit(cache=True, nogil=True, parallel=True)
def first_valid_parallel(
    r0: np.uint64,
    r1: np.uint64,
    r2: np.uint64,
    r3: np.uint64,
    target: np.uint64,
    start: np.uint64,
    count: int,
    chunks: int,
) -> int:
    """`first_valid` over `chunks` equal parts of the range in parallel: the lowest offset."""
    size = (count + chunks - 1) // chunks
    found = np.full(chunks, -1, dtype=np.int64)
    for c in numba.prange(chunks):
        lo = c * size
        n = min(size, count - lo)
        if n > 0:
            k = first_valid(r0, r1, r2, r3, target, start + np.uint64(lo), n)
            if k >= 0:
                found[c] = lo + k
    for c in range(chunks):
        if found[c] >= 0:
            return int(found[c])
    return -1
