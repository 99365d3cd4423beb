"""Errors of the wallet's configuration, its state file, its node client and its command line."""

from __future__ import annotations

from ._base import WalletError

# -- configuration and state -----------------------------------------------------------------


class WalletConfigError(WalletError):
    """A configuration value out of its range (`field` names it)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"invalid {field}: {reason}")
        self.field = field
        self.reason = reason


class NodeUrlError(WalletConfigError):
    """A node URL without an `http://` or `https://` scheme, or without a host. The URL is not
    repeated: it may carry credentials."""

    def __init__(self) -> None:
        super().__init__(
            "node URL", "expected http://HOST:PORT or https://HOST:PORT, e.g. http://127.0.0.1:8080"
        )


class WalletStateError(WalletError):
    """The wallet state file cannot be used: unreadable, a newer schema, another account or
    another network than the one it was created for."""


# -- talking to a node -----------------------------------------------------------------------


class ClientError(WalletError):
    """A request to a node that did not give a usable answer. Messages name the method and
    path, never the node's URL (which may carry credentials)."""


class NodeUnavailableError(ClientError):
    """No usable answer after the retries: the connection failed or timed out, or the node
    answered 5xx (`status`; `reason` holds the node's error code and message, if any). Also a
    429, or a refusal of a submission other than a duplicate, after an earlier try whose
    answer was lost. `outcome_unknown`: a try may have been carried out (its answer was lost:
    a timeout, a broken connection, a 500 or 502 or 504 that may follow the work), see
    `wallet.client`; False only when no try can have changed anything."""

    def __init__(
        self, request: str, reason: str, *, status: int | None = None, outcome_unknown: bool = False
    ) -> None:
        super().__init__(f"{request}: node unavailable: {reason}")
        self.request = request
        self.reason = reason
        self.status = status
        self.outcome_unknown = outcome_unknown


class EventStreamError(NodeUnavailableError):
    """The event stream did not open in time, broke, ended, or the node dropped this client."""


class RateLimitedError(ClientError):
    """The node still answered 429 when the retries ran out, and no try was carried out (no
    answer was lost: else it is `NodeUnavailableError`); `retry_after_s` is the node's hint."""

    def __init__(self, request: str, code: str, retry_after_s: float | None) -> None:
        super().__init__(f"{request}: rate limited by the node ({code})")
        self.request = request
        self.code = code
        self.retry_after_s = retry_after_s


class RejectedError(ClientError):
    """The node refused the request; `code` is the node's error code (`insufficient_work`,
    `duplicate_payload`, `invalid_transaction`, ...), `status` the HTTP status."""

    def __init__(self, request: str, code: str, status: int, message: str) -> None:
        super().__init__(f"{request}: refused ({status} {code}): {message}")
        self.request = request
        self.code = code
        self.status = status
        self.node_message = message


class NotFoundError(RejectedError):
    """404: no such message, milestone or route."""


class InvalidResponseError(ClientError):
    """The node answered something the API does not document (not JSON, a missing field)."""

    def __init__(self, request: str, reason: str) -> None:
        super().__init__(f"{request}: unexpected answer: {reason}")
        self.request = request
        self.reason = reason


# -- the command line ------------------------------------------------------------------------


class CliError(WalletError):
    """A failure of `tanglepay wallet` with its exit code and JSON error code; the message is the
    one line shown (`wallet.cli.classify` turns every other failure into one)."""

    def __init__(self, exit_code: int, code: str, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.code = code
