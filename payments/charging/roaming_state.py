"""The CSMS's roaming state on disk: the eMSPs registered with it, the Token As not yet spent,
the tokens they pushed, and the CDRs sent (and which were), so a restarted CSMS still knows its
partners, authorizes their drivers and never sends a CDR twice or changes one it sent.

One JSON document (OCPI's own shapes: credentials, version details, Token and CDR objects, read
back with their strict parsers), written to a temporary file, fsync'd and renamed over the old
one (`save`), so a crash leaves the previous state or the new one, never half of either.
`restore` fills a fresh `Registry` and `OcpiStore`; a document that breaks a rule raises the
parser's `ChargingError` and changes nothing. `roaming_service` saves after every OCPI request
that may change state and after every CDR push.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final

from . import ocpi_json as j
from .errors import OcpiFieldError
from .ocpi_cdr import cdr_to_json, parse_cdr
from .ocpi_credentials import (
    VERSION,
    Party,
    credentials_to_json,
    endpoints_to_json,
    parse_credentials,
    parse_endpoints,
)
from .ocpi_session import parse_token, token_to_json

if TYPE_CHECKING:
    from pathlib import Path

    from .ocpi_credentials import Registry
    from .ocpi_store import OcpiStore

FORMAT: Final = "tanglepay/charging/roaming-state/v1"


def snapshot(registry: Registry, store: OcpiStore) -> bytes:
    """The state of `registry` and `store` as one canonical document."""
    doc = {
        "format": FORMAT,
        "pending": sorted(registry.pending),
        "parties": [
            {
                "token": party.token,
                "credentials": credentials_to_json(party.credentials),
                "endpoints": endpoints_to_json(VERSION, party.endpoints),
            }
            for party in registry.parties.values()
        ],
        "tokens": [token_to_json(t) for t in store.tokens.rows.values()],
        "cdrs": [cdr_to_json(c) for c in store.cdrs.rows.values()],
        "sent": sorted(store.sent),
    }
    return j.dumps(doc).encode()


def save(path: Path, registry: Registry, store: OcpiStore) -> None:
    """Replace the document at `path` atomically (see the module docstring)."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as sink:
        sink.write(snapshot(registry, store))
        sink.flush()
        os.fsync(sink.fileno())
    temporary.replace(path)


def _texts(value: object, path: str) -> list[str]:
    found = []
    for n, item in enumerate(j.items(value, path)):
        if not isinstance(item, str) or not 0 < len(item) <= 256:
            raise OcpiFieldError(f"{path}[{n}]", "a string of 1 to 256 characters")
        found.append(item)
    return found


def restore(path: Path, registry: Registry, store: OcpiStore) -> bool:
    """Fill `registry` and `store` (fresh ones) from `path`; False if there is none yet."""
    if not path.exists():
        return False
    doc = j.obj(j.loads(path.read_bytes()), "state")
    if doc.get("format") != FORMAT:
        raise OcpiFieldError("state.format", f"not {FORMAT}")
    parties = []
    for n, raw in enumerate(j.items(doc.get("parties"), "state.parties")):
        o = j.obj(raw, f"state.parties[{n}]")
        _, endpoints = parse_endpoints(o.get("endpoints"), f"state.parties[{n}].endpoints")
        parties.append(
            Party(
                credentials=parse_credentials(o.get("credentials"), f"state.parties[{n}]"),
                endpoints=endpoints,
                token=j.need_text(o, "token", f"state.parties[{n}]", max_len=64),
            )
        )
    pending = _texts(doc.get("pending"), "state.pending")
    tokens = [parse_token(t) for t in j.items(doc.get("tokens"), "state.tokens")]
    cdrs = [parse_cdr(c) for c in j.items(doc.get("cdrs"), "state.cdrs")]
    sent = _texts(doc.get("sent"), "state.sent")
    for token in pending:  # everything parsed: now apply
        registry.issue(token)
    for party in parties:
        registry.bind(party)
    for t in tokens:
        store.put_token(t)
    for cdr in cdrs:
        store.add_cdr(cdr)
    for cdr_id in sent:
        store.mark_sent(cdr_id)
    return True
