"""The root of the wallet's error tree (drawn in `wallet.errors`)."""

from __future__ import annotations


class WalletError(Exception):
    """Root of every error raised by the `wallet` package."""
