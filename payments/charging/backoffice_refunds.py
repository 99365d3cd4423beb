"""The back office's routes for the refunds owed to drivers (`refund_desk`): the operator lists
them (`GET /api/refunds`, `?state=held`, pages of `?limit` after the cursor `?after=`, the last
page's `next`), each with its transfer's state in the CPO's wallet (`transfer`: `none`,
`pending`, `confirmed`, `failed`, `abandoned`, `unknown` where its record cannot be read; null
without a wallet), and acts on one
(`POST /api/refunds/{kind}/{id}/retry`, `.../settle` with `{"note": ...}`, `.../hold`). The back
office answers their refusals by name (`backoffice.backoffice_app`): 400 `bad_refund` for an id
that names no refund, 400 `bad_note`, 404 `refund_not_found` for a refund not owed (paid, or
settled), 409 `refund_not_held` for one owed but not held, 409 `refund_transfer_live` for a
settlement while the wallet's transfer of the refund is pending, confirmed or abandoned, 503
`refund_wallet_unreadable` for a settlement when the wallet's record cannot be read (its
file damaged, of another version or locked: the CSMS still serves, and lists such a transfer
as `unknown`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from starlette.responses import JSONResponse, Response

from .backoffice_routes import BadRequestError, Operation, json_body
from .refund_desk import MAX_PAGE, parse_ref

if TYPE_CHECKING:
    from starlette.requests import Request

    from .refund_attempts import TransferRecords
    from .refund_desk import RefundDesk, RefundRef

UNREADABLE: Final = (("503", "refund_wallet_unreadable: the CPO wallet's record cannot be read"),)
"""The answer of an action that cannot read the CPO wallet's record."""
CHECKED_REFUSED: Final = (
    (
        "409",
        "refund_not_held: owed, but not held (the refunder is paying it); "
        "refund_transfer_live: the CPO wallet's transfer under its key is pending (it may "
        "still confirm), confirmed (paid: retry it) or abandoned after it was attached (it "
        "may be attached again and apply)",
    ),
    *UNREADABLE,
)
"""The answers a settlement, or a retry under a new key, adds to the document."""


def refund_operations(refunds: RefundDesk, wallet: TransferRecords | None) -> list[Operation]:
    """The operator's routes over `refunds` (`CsmsStore.refunds`), whose transfers the CPO's
    `wallet` records (None: this CSMS has no wallet, and never sent a refund)."""

    async def owed(request: Request) -> Response:
        query = request.query_params
        state, limit = query.get("state"), query.get("limit", str(MAX_PAGE))
        if state not in (None, "held"):
            raise BadRequestError("state must be held (or left out: every refund owed)")
        if not (limit.isdecimal() and len(limit) <= 3 and 0 < int(limit) <= MAX_PAGE):
            raise BadRequestError(f"limit must be 1-{MAX_PAGE}")
        page = await refunds.page(
            held_only=state == "held", after=query.get("after"), limit=int(limit), wallet=wallet
        )
        return JSONResponse(page.to_json())

    async def retry(request: Request) -> Response:
        return JSONResponse((await refunds.retry_held(_ref(request), wallet=wallet)).to_json())

    async def hold(request: Request) -> Response:
        return JSONResponse((await refunds.hold(_ref(request))).to_json())

    async def settle(request: Request) -> Response:
        ref = _ref(request)
        note = (await json_body(request)).get("note")
        if not isinstance(note, str):
            raise BadRequestError("note (string): how the refund was paid")
        settled = await refunds.settle_held(ref, note, wallet=wallet)
        return JSONResponse({**settled.to_json(), "settled": True, "note": note})

    action = "/api/refunds/{kind}/{id:path}/"
    return [
        Operation(
            "GET",
            "/api/refunds",
            "Refunds owed to drivers, a page ordered by refund (`next`: the cursor)",
            True,
            owed,
            query=("state", "limit", "after"),
        ),
        Operation(
            "POST",
            action + "retry",
            "Owe a held refund again: held, under its next attempt (refused while its transfer "
            "may still apply); paused, under its key",
            True,
            retry,
            answers=CHECKED_REFUSED,
        ),
        Operation(
            "POST",
            action + "hold",
            "Hold (pause) an owed refund: the refunder no longer pays it (to settle it)",
            True,
            hold,
        ),
        Operation(
            "POST",
            action + "settle",
            "Forget a held refund paid outside the ledger, logging the note (refused while "
            "its transfer is pending, confirmed or abandoned)",
            True,
            settle,
            answers=CHECKED_REFUSED,
        ),
    ]


def _ref(request: Request) -> RefundRef:
    return parse_ref(request.path_params["kind"], request.path_params["id"])
