"""How a wallet discovers addresses, does its work and waits (`WalletConfig`), and the chains of
an account's addresses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from .errors import WalletConfigError

if TYPE_CHECKING:
    import random

RECEIVE: Final = 0
"""The chain of receiving addresses."""
CHANGE: Final = 1
"""The chain of change addresses."""
BELOW_MAX_DEPTH: Final = 15
"""Milestones after which an unconfirmed message can no longer be confirmed (PROTOCOL 6)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WalletConfig:
    """How a wallet discovers addresses, does its work and waits."""

    gap_limit: int = 20
    """Consecutive unused addresses after which discovery stops (BIP-44's 20)."""
    reattach_after: int = 16
    """Milestones after its last attachment before an unconfirmed transfer is re-attached;
    more than 15 (below max depth), so the node has freed the payload's slot."""
    expire_after: int = 20
    """Milestones after which `settle` releases the inputs of an unconfirmed transfer that
    nobody re-attached (at least `reattach_after`, so a live sender re-attaches first)."""
    confirm_timeout_s: float = 120.0
    """How long `send` waits for confirmation before `TransferTimeoutError`."""
    remote_pow: bool = False
    """Ask the node to do the proof-of-work (small devices)."""
    pow_threads: int | None = None
    """Threads for a local search (None: Numba's whole pool)."""
    poll_interval_s: float = 1.0
    """Between two polls when the event stream is not available."""
    stream_open_timeout_s: float = 5.0
    """How long opening the event stream may take before polling instead."""
    stream_retry_s: float = 10.0
    """How long to poll before trying the event stream again."""
    abandon_after_s: float = 600.0
    """A transfer signed but never submitted, untouched this long, has lost its sender:
    `settle` fails it and releases its inputs."""
    sync_concurrency: int = 8
    """Address queries in flight at once during `sync`."""

    def __post_init__(self) -> None:
        if not 1 <= self.gap_limit <= 1000:
            raise WalletConfigError("WalletConfig.gap_limit", "must be in 1..1000")
        if self.reattach_after <= BELOW_MAX_DEPTH:
            raise WalletConfigError("WalletConfig.reattach_after", "must exceed 15")
        if self.expire_after < self.reattach_after:
            raise WalletConfigError("WalletConfig.expire_after", "must be >= reattach_after")
        for name in (
            "confirm_timeout_s",
            "poll_interval_s",
            "stream_open_timeout_s",
            "stream_retry_s",
            "abandon_after_s",
        ):
            if not getattr(self, name) > 0:
                raise WalletConfigError(f"WalletConfig.{name}", "must be positive")
        if self.sync_concurrency < 1:
            raise WalletConfigError("WalletConfig.sync_concurrency", "must be at least 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently a request is repeated."""

    attempts: int = 6
    """Tries in all (1: no retry)."""
    base_delay_s: float = 0.25
    """The first backoff; it doubles with each retry, up to `max_delay_s`, with jitter."""
    max_delay_s: float = 8.0
    """The longest backoff between two tries."""
    max_retry_after_s: float = 30.0
    """The longest `Retry-After` (429) honoured; a longer one ends the retries."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise WalletConfigError("RetryPolicy.attempts", "must be at least 1")
        if not 0 <= self.base_delay_s <= self.max_delay_s:
            raise WalletConfigError("RetryPolicy.base_delay_s", "must be in 0..max_delay_s")
        if self.max_retry_after_s < 0:
            raise WalletConfigError("RetryPolicy.max_retry_after_s", "must not be negative")

    def delay(self, retry: int, rng: random.Random) -> float:
        """The backoff before retry number `retry` (0 first): full size to half, at random."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0**retry)
        return ceiling * (0.5 + rng.random() / 2)
