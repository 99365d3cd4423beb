"""Where the roaming tests find the sample files: the project's copy in `tests/vectors/tap/`,
checked against `/work/shared/vectors/tap/` (the folder `shared` beside the repository root)
when that is present."""

from __future__ import annotations

from pathlib import Path

from payments.roaming import ImportPolicy, SubscriberHasher

ROOT = Path(__file__).resolve().parents[3]
TAP_VECTORS = ROOT / "tests" / "vectors" / "tap"
SHARED_TAP_VECTORS = ROOT / ".." / "shared" / "vectors" / "tap"
SALT = bytes(range(16))
POLICY = ImportPolicy(hasher=SubscriberHasher(salt=SALT))


def read(name: str) -> bytes:
    return (TAP_VECTORS / name).read_bytes()
