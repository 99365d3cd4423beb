"""The back office's routes for the refunds owed to drivers (`refund_desk`): the operator lists
them (`GET /api/refunds`, `?state=held`, pages of `?limit` after the cursor `?after=`, the last
page's `next`) and acts on one (`POST /api/refunds/{kind}/{id}/retry`, `.../settle` with
`{"note": ...}`, `.../hold`). The back office answers their refusals by name
(`backoffice.backoffice_app`): 400 `bad_refund` for an id that names no refund, 400
`bad_note`, 404 `refund_not_found` for a refund not owed (paid, or settled), 409
`refund_not_held` for one owed but not held."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from starlette.responses import JSONResponse, Response

from .backoffice_routes import BadRequestError, Operation, json_body
from .refund_desk import MAX_PAGE, parse_ref, ref_text

if TYPE_CHECKING:
    from starlette.requests import Request

    from .refund_desk import RefundDesk, RefundRef

NOT_HELD: Final = (("409", "refund_not_held: owed, but not held (the refunder is paying it)"),)
"""The answer an action only on a held refund adds to the document."""


def refund_operations(refunds: RefundDesk) -> list[Operation]:
    """The operator's routes over `refunds` (`CsmsStore.refunds`)."""

    async def owed(request: Request) -> Response:
        query = request.query_params
        state, limit, after = query.get("state"), query.get("limit", str(MAX_PAGE)), None
        if state not in (None, "held"):
            raise BadRequestError("state must be held (or left out: every refund owed)")
        if not (limit.isdecimal() and len(limit) <= 3 and 0 < int(limit) <= MAX_PAGE):
            raise BadRequestError(f"limit must be 1-{MAX_PAGE}")
        if "after" in query:
            kind, _, ref = query["after"].partition("/")
            after = parse_ref(kind, ref)
        size = int(limit)
        page = await refunds.owed_page(held_only=state == "held", after=after, limit=size)
        last = "/".join(ref_text(page[-1].ref)) if len(page) == size else None
        return JSONResponse({"refunds": [r.to_json() for r in page], "next": last})

    async def retry(request: Request) -> Response:
        return JSONResponse((await refunds.retry_held(_ref(request))).to_json())

    async def hold(request: Request) -> Response:
        return JSONResponse((await refunds.hold(_ref(request))).to_json())

    async def settle(request: Request) -> Response:
        ref = _ref(request)
        note = (await json_body(request)).get("note")
        if not isinstance(note, str):
            raise BadRequestError("note (string): how the refund was paid")
        settled = await refunds.settle_held(ref, note)
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
            "Owe a held refund again: held, under its next attempt (its transfer can never "
            "apply); paused, under its key",
            True,
            retry,
            answers=NOT_HELD,
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
            "Forget a held refund paid outside the ledger, logging the note",
            True,
            settle,
            answers=NOT_HELD,
        ),
    ]


def _ref(request: Request) -> RefundRef:
    return parse_ref(request.path_params["kind"], request.path_params["id"])
