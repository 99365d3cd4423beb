"""`tanglepay charging refunds | refund-retry | refund-settle` (`payments.charging.cli`) on the
CSMS's database: the operator lists the owed refunds (held ones alone with `--held`, a full page
naming the next one's cursor), retries or settles a held one, and a refused action is one line
on stderr, exit status 2. Before, these commands did not exist."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from typing import TYPE_CHECKING, Any

from payments.charging.cli import main as charging_main
from payments.charging.store import CsmsStore

from .test_refund_desk import NOTE, SESSIONS, TOKENS, owe

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def _cli(db: Path, *args: str) -> Any:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert charging_main(["--db", str(db), "--json", *args]) == 0
    return json.loads(buffer.getvalue())


def _owing(db: Path) -> None:
    async def write() -> None:
        async with CsmsStore(db) as store:
            await owe(store, SESSIONS, TOKENS)

    asyncio.run(write())


def test_the_operator_lists_retries_and_settles_held_refunds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "csms.sqlite"
    _owing(db)
    held = _cli(db, "refunds", "--held")
    assert [(r["kind"], r["id"], r["amount"], r["attempt"]) for r in held] == [
        ("session", "CP1/T2", 300, 3),
        ("token", "2", 150, 0),
    ]
    page = _cli(db, "refunds", "--limit", "2")
    assert [r["id"] for r in page] == ["CP1/T1", "CP1/T2"]
    assert "more: --after session/CP1/T2" in capsys.readouterr().err
    rest = _cli(db, "refunds", "--after", "session/CP1/T2")
    assert [r["id"] for r in rest] == ["CP2/A/B", "1", "2", "3"]
    retried = _cli(db, "refund-retry", "session", "CP1/T2")
    assert (retried["state"], retried["attempt"], retried["amount"]) == ("sending", 4, 300)
    settled = _cli(db, "refund-settle", "token", "2", "--note", NOTE)
    assert (settled["settled"], settled["amount"], settled["note"]) == (True, 150, NOTE)
    assert _cli(db, "refunds", "--held") == []
    capsys.readouterr()
    assert charging_main(["--db", str(db), "refund-settle", "token", "2", "--note", NOTE]) == 2
    assert capsys.readouterr().err == "error: no token refund '2' is owed\n"
    assert charging_main(["--db", str(db), "refund-retry", "session", "CP1/T1"]) == 2
    assert "is sending, not held" in capsys.readouterr().err
    assert charging_main(["--db", str(db), "refund-retry", "token", "0"]) == 2
    assert "positive integer" in capsys.readouterr().err
