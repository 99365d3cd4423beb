"""`tanglepay charging refunds | refund-retry | refund-settle` (`payments.charging.cli`) on the
CSMS's database: the operator lists the owed refunds (held ones alone with `--held`, a full page
naming the next one's cursor), retries or settles a held one, and a refused action is one line
on stderr, exit status 2; the upgrade note of the README holds. Before, these commands did not
exist. And `charging serve` logs tanglepay's info lines (a settled refund's note, a refund paid)
on stderr, other libraries' only from warning up: before, nothing configured logging, and every
info line was dropped."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import shutil
from typing import TYPE_CHECKING, Any

import pytest

from payments.charging.cli import main as charging_main
from payments.charging.refund_attempts import attempt_key
from payments.charging.refund_wallet import wallet_state_path
from payments.charging.store import CsmsStore
from tangle.protocol.transaction import address_of
from tests._programs import run_python
from tests.wallet.test_client import ACCOUNT
from wallet.idempotency import account_fingerprint
from wallet.state import WalletState

from .old_databases import as_version_1_left_it
from .test_payment import DRIVER, World, run
from .test_refund import Sent, WalletRules, _billed_prepaid
from .test_refund_attempts import SESSION_KEY, _refunder
from .test_refund_desk import NOTE, SESSIONS, TOKENS, owe

if TYPE_CHECKING:
    from pathlib import Path


def _cli(db: Path, *args: str) -> Any:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert charging_main(["--db", str(db), "--json", *args]) == 0
    return json.loads(buffer.getvalue())


def _owing(db: Path) -> None:
    """`db` owes `SESSIONS` and `TOKENS`; the CPO's wallet beside it recorded no transfer."""

    async def write() -> None:
        async with CsmsStore(db) as store:
            await owe(store, SESSIONS, TOKENS)

    asyncio.run(write())
    _no_transfer(db)


def _no_transfer(db: Path) -> None:
    """The CPO wallet's state file beside `db`, as a CSMS run with a refund seed creates it,
    with no transfer recorded."""
    WalletState.open(wallet_state_path(db), account=account_fingerprint(ACCOUNT)).close()


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
    for limit in ("0", "501", "-1", "x"):  # refused as the back office refuses them
        with pytest.raises(SystemExit) as refused:
            charging_main(["--db", str(db), "refunds", "--limit", limit])
        assert refused.value.code == 2
    assert "must be 1-500" in capsys.readouterr().err
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


def test_a_refund_stuck_sending_before_the_upgrade_is_paid_unless_held_and_settled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's upgrade note. Version 1 left a refund `sending` whose transfer then failed
    for good (it was sent again and refused at every round). The operator who paid it by hand
    holds and settles it before starting this version (settling alone is refused: it is not
    held): the refunder sends nothing. Left as it was, this version's refunder moves it to
    attempt 1 at its first round and pays it at its second: the driver would be paid twice."""
    sent: list[Sent] = []
    ledger = WalletRules(sent, lost=1)

    async def before(world: World) -> None:
        await _billed_prepaid(world, "CARD-U", 900, 1_200)  # 540 owed back
        assert await _refunder(world, ledger).retry() == 0  # 540 sent, answer lost

    run(tmp_path, before)
    as_version_1_left_it(tmp_path / "csms.sqlite")
    ledger.fail(SESSION_KEY, "input_spent")
    (tmp_path / "settled").mkdir()
    db = tmp_path / "settled" / "csms.sqlite"
    shutil.copy(tmp_path / "csms.sqlite", db)
    _no_transfer(db)  # its transfer is recorded in the refunder's wallet (`WalletRules`)

    [stuck] = _cli(db, "refunds")  # opened, so upgraded: attempt 0, its key kept
    assert (stuck["state"], stuck["attempt"], stuck["key"]) == ("sending", 0, SESSION_KEY.decode())
    capsys.readouterr()
    settle = ["--db", str(db), "refund-settle", "session", "CP201/T1", "--note", NOTE]
    assert charging_main(settle) == 2
    assert "is sending, not held" in capsys.readouterr().err
    assert _cli(db, "refund-hold", "session", "CP201/T1")["state"] == "paused"
    assert charging_main(settle) == 0

    async def settled(world: World) -> None:
        assert await _refunder(world, ledger).retry() == 0
        assert len(sent) == 1  # nothing sent again

    run(tmp_path / "settled", settled)

    async def left(world: World) -> None:
        refunds = _refunder(world, ledger)
        assert await refunds.retry() == 0  # failed for good: attempt 1 next
        assert await refunds.retry() == 1
        to = address_of(DRIVER.public_key)
        assert ledger.paid() == [(to, 540, attempt_key(SESSION_KEY, 1))]

    run(tmp_path, left)


def test_the_csms_logs_its_own_info_lines_and_only_warnings_of_other_libraries() -> None:
    script = (
        "import logging\n"
        "from payments.charging.cli import configure_logging\n"
        "configure_logging('info')\n"
        "logging.getLogger('payments.charging.refund_desk').info('settled: %s', 'ref 7')\n"
        "logging.getLogger('websockets.server').info('connection open')\n"
        "logging.getLogger('ocpp').warning('a library warning')\n"
    )
    err = run_python("-c", script, timeout=60).stderr
    assert "INFO payments.charging.refund_desk: settled: ref 7" in err
    assert "connection open" not in err
    assert "WARNING ocpp: a library warning" in err
