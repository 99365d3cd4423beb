"""`tanglepay roaming alerts`: the carrier's fraud alerts from its back-office API.

```
alerts --url URL [--after N] [--limit L] [--token-file F] [--follow [--polls P]]
```

Without `--follow`: the alerts after number N (one page) and the number to read on from. With
`--follow`: long-polls (`wait=25`) and prints each alert as it arrives, one line each (one JSON
object a line with `--json`), until interrupted or after P polls; then the summary. No IMSI is
ever printed: alerts carry the keyed IMSI hash.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Final

import httpx

from .backoffice import ALERTS
from .errors import BackOfficeError

if TYPE_CHECKING:
    import argparse

Doc = dict[str, object]
FOLLOW_WAIT_S: Final = 25
MAX_POLLS: Final = 10**9


def _page(
    client: httpx.Client, after: int, limit: int, wait: int
) -> tuple[list[dict[str, object]], int, dict[str, object]]:
    """One page: its alerts, the number to read on from, and the whole answer."""
    try:
        response = client.get(
            ALERTS, params={"after": after, "limit": limit, "wait": wait}, timeout=wait + 30
        )
    except httpx.HTTPError as e:
        raise BackOfficeError(f"cannot reach the back office: {e}") from None
    if response.status_code != 200:
        raise BackOfficeError(f"back office ({response.status_code}): {response.text[:300]}")
    doc = response.json()
    if not isinstance(doc, dict):
        raise BackOfficeError("the back office answered no page of alerts")
    alerts, next_ = doc.get("alerts"), doc.get("next")
    if not isinstance(alerts, list) or not all(isinstance(a, dict) for a in alerts):
        raise BackOfficeError("the back office answered no page of alerts")
    if not isinstance(next_, int):
        raise BackOfficeError("the back office answered no next number")
    return alerts, next_, doc


def _line(alert: dict[str, object]) -> str:
    imsi = alert.get("imsi_hash") or "-"
    return (
        f"#{alert['number']} {alert['rule']} at={alert['at']} partner={alert['partner']}"
        f" imsi_hash={str(imsi)[:16]} value={alert['value']} limit={alert['limit']}"
    )


def _alerts(args: argparse.Namespace) -> Doc:
    headers = {}
    if args.token_file is not None:
        headers["authorization"] = f"Bearer {args.token_file.read_text().strip()}"
    after, received = args.after, 0
    with httpx.Client(base_url=args.url, headers=headers) as client:
        if not args.follow:
            alerts, next_, doc = _page(client, after, args.limit, 0)
            if not args.json:
                for alert in alerts:
                    print(_line(alert))
                print(f"next: {next_}")
            return doc
        try:
            for _ in range(args.polls):
                alerts, after, _ = _page(client, after, args.limit, FOLLOW_WAIT_S)
                for alert in alerts:
                    print(json.dumps(alert, sort_keys=True) if args.json else _line(alert))
                    received += 1
        except KeyboardInterrupt:
            pass
    if not args.json:
        print(f"next: {after}")
    return {"next": after, "received": received}


def add_alert_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `alerts` command, on the roaming CLI's parser."""
    alerts = commands.add_parser("alerts")
    alerts.add_argument("--url", required=True, help="the back office, e.g. http://127.0.0.1:8090")
    alerts.add_argument("--after", type=int, default=0)
    alerts.add_argument("--limit", type=int, default=1000)
    alerts.add_argument("--token-file", type=Path)
    alerts.add_argument("--follow", action="store_true")
    alerts.add_argument("--polls", type=int, default=MAX_POLLS, help="stop following after P")
    alerts.set_defaults(run=_alerts)
