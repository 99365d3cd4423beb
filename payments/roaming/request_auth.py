"""Operator-to-operator request signatures (sans-I/O): each HTTP request between carriers is
signed by the sending carrier's operator key, names the carrier it is addressed to, and a bounded
replay window refuses it twice.

```
x-roaming-operator   TADIG of the sender
x-roaming-recipient  TADIG of the carrier the request is addressed to
x-roaming-timestamp  seconds since the epoch (decimal)
x-roaming-nonce      16 random bytes, hex
x-roaming-signature  ed25519 signature (hex) of
                     REQUEST_DOMAIN | method | 0x0a | path | 0x0a | operator | 0x0a | recipient
                     | 0x0a | timestamp | 0x0a | nonce | 0x0a | BLAKE2b-256(body)
```

`RequestVerifier` (held by the carrier `own`) accepts a request only if it is addressed to `own`
(else `MisaddressedRequestError`, naming both: partner A's request to B replayed to C within
the window is refused by C), the operator is a known partner, its key verifies the signature
(over the recipient too, so the header cannot be rewritten), the timestamp is within `window_s`
of the verifier's clock, and the nonce was not seen within the window. Seen nonces are kept per
operator, at most `max_nonces` each: a partner that floods the window is refused until its old
nonces expire, and cannot push out another's.
"""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING, Final

from tangle.protocol.ids import Signature, blake2b_256
from tangle.protocol.signature import is_valid

from .errors import MisaddressedRequestError, RequestAuthError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from tangle.protocol.ids import PublicKey
    from tangle.protocol.signature import Signer

REQUEST_DOMAIN: Final = b"tanglepay/roaming/request/v2"
WINDOW_S: Final = 300
MAX_NONCES: Final = 100_000
OPERATOR: Final = "x-roaming-operator"
RECIPIENT: Final = "x-roaming-recipient"
TIMESTAMP: Final = "x-roaming-timestamp"
NONCE: Final = "x-roaming-nonce"
SIGNATURE: Final = "x-roaming-signature"
_NONCE: Final = re.compile(r"[0-9a-f]{32}")
_SIG: Final = re.compile(r"[0-9a-f]{128}")


def request_message(
    method: str, path: str, operator: str, recipient: str, timestamp: int, nonce: str, body: bytes
) -> bytes:
    parts = (method.upper(), path, operator, recipient, str(timestamp), nonce)
    return REQUEST_DOMAIN + b"\n".join(p.encode() for p in parts) + b"\n" + blake2b_256(body)


def sign_request(
    signer: Signer,
    operator: str,
    method: str,
    path: str,
    body: bytes,
    now: int,
    *,
    recipient: str,
) -> dict[str, str]:
    """The headers that authenticate a request of `operator` (signed by `signer`) to
    `recipient`."""
    nonce = secrets.token_hex(16)
    signature = signer.sign(request_message(method, path, operator, recipient, now, nonce, body))
    return {
        OPERATOR: operator,
        RECIPIENT: recipient,
        TIMESTAMP: str(now),
        NONCE: nonce,
        SIGNATURE: signature.hex(),
    }


class RequestVerifier:
    """Checks signed requests from the partners in `keys` (see the module docstring)."""

    __slots__ = ("_keys", "_max_nonces", "_seen", "_window", "own")

    def __init__(
        self,
        keys: Mapping[str, PublicKey],
        *,
        own: str,
        window_s: int = WINDOW_S,
        max_nonces: int = MAX_NONCES,
    ) -> None:
        self.own = own
        """The TADIG of the carrier that verifies: requests addressed to another are refused."""
        self._keys = dict(keys)
        self._window = window_s
        self._max_nonces = max_nonces
        self._seen: dict[str, dict[str, int]] = {t: {} for t in self._keys}

    def verify(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes, now: int
    ) -> str:
        """The TADIG of the partner that signed the request; `RequestAuthError` otherwise.
        Only a request that passed every check uses up its nonce."""
        operator = headers.get(OPERATOR, "")
        recipient = headers.get(RECIPIENT, "")
        if not recipient:
            raise RequestAuthError("no recipient named")
        if recipient != self.own:
            raise MisaddressedRequestError(operator[:16], recipient[:16], self.own)
        key = self._keys.get(operator)
        if key is None:
            raise RequestAuthError("unknown operator")
        stamp, nonce, sig = (headers.get(h, "") for h in (TIMESTAMP, NONCE, SIGNATURE))
        if not stamp.isdigit() or len(stamp) > 12:
            raise RequestAuthError("no valid timestamp")
        timestamp = int(stamp)
        if abs(now - timestamp) > self._window:
            raise RequestAuthError("the timestamp is outside the replay window")
        if not _NONCE.fullmatch(nonce) or not _SIG.fullmatch(sig):
            raise RequestAuthError("no valid nonce or signature")
        message = request_message(method, path, operator, recipient, timestamp, nonce, body)
        if not is_valid(key, message, Signature(bytes.fromhex(sig))):
            raise RequestAuthError(f"the signature is not {operator}'s")
        seen = self._seen[operator]
        for old in [n for n, t in seen.items() if abs(now - t) > self._window]:
            del seen[old]
        if nonce in seen:
            raise RequestAuthError("a replayed request (nonce already seen)")
        if len(seen) >= self._max_nonces:
            raise RequestAuthError("too many requests in the replay window")
        seen[nonce] = timestamp
        return operator
