"""The error tree of `wallet.devices`, a branch of the wallet's tree (`wallet.errors`).

```
WalletError
└── DeviceDataError                 signed device data, its anchoring, proofs and sealed storage
    ├── ReadingFormatError          bytes that are not one canonical signed reading
    ├── ReadingRejectedError        a well-formed reading a gateway refuses
    │   ├── UnknownDeviceError      no registered key for the reading's device
    │   ├── ReadingNetworkError     signed for another network
    │   ├── ReadingReplayError      counter not above the last one accepted from the device
    │   └── GatewayFullError        the open batch, or the device table, is at its bound
    ├── NotRegisteredError          the node's registry holds no entry for the device
    ├── ProofUnavailableError       a node cannot (yet, or any more) serve a proof's links
    ├── DeviceProofError            a proof bundle that does not check (`link` names the link)
    │   ├── ProofBundleFormatError  not a proof bundle: bad JSON, a field missing or malformed
    │   ├── MilestoneSignatureError the milestone is not signed by the committee of its index
    │   ├── RegistryPathError       the registry entry is not under the milestone's registry root
    │   ├── DeviceNotActiveError    the device was not active at that milestone
    │   ├── ReadingSignatureError   the reading is not signed by the registered device key
    │   ├── InclusionPathError      the anchor message is not under the inclusion root
    │   ├── AnchorPayloadError      the anchor message does not anchor a batch root
    │   └── BatchPathError          the reading is not under the anchored batch root
    └── SealError                   encrypted readings, data keys, grants and revocations
        ├── SealFormatError         bytes that are not a canonical sealed record or grant
        ├── GrantSignatureError     a grant or revocation not signed by the stream's owner
        ├── NoGrantError            no data key sealed to this reader for that period
        └── OpenError               a ciphertext or sealed key that does not open
```
"""

from __future__ import annotations

from wallet.errors import WalletError


class DeviceDataError(WalletError):
    """Root of the errors of device data: readings, batches, proofs, sealed storage."""


class ReadingFormatError(DeviceDataError):
    """Bytes that are not one canonical signed reading (`reason` says which rule)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"not a signed reading: {reason}")
        self.reason = reason


class ReadingRejectedError(DeviceDataError):
    """A well-formed reading that a gateway refuses."""


class UnknownDeviceError(ReadingRejectedError):
    """The gateway holds no key for this device."""

    def __init__(self, device_id: bytes) -> None:
        super().__init__(f"unknown device {device_id.hex()}")
        self.device_id = device_id


class ReadingNetworkError(ReadingRejectedError):
    """A reading signed for another network."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"reading for network {got}, this gateway serves {expected}")
        self.expected = expected
        self.got = got


class ReadingReplayError(ReadingRejectedError):
    """A counter not above the last one accepted from the device: a replay or a reordering."""

    def __init__(self, device_id: bytes, counter: int, last: int) -> None:
        super().__init__(f"device {device_id.hex()} counter {counter} is not above {last}")
        self.device_id = device_id
        self.counter = counter
        self.last = last


class GatewayFullError(ReadingRejectedError):
    """The open batch or the device table is at its bound; anchor the batch first."""

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(f"{what} is full ({limit})")
        self.what = what
        self.limit = limit


class NotRegisteredError(DeviceDataError):
    """The node's registry holds no entry for this device (yet: registration takes a
    milestone)."""

    def __init__(self, device_id: bytes) -> None:
        super().__init__(f"device {device_id.hex()} is not registered")
        self.device_id = device_id


class ProofUnavailableError(DeviceDataError):
    """A node cannot serve the links of a proof: the anchor is not confirmed yet, the
    registry moved on since its milestone, or its answers disagree with the milestone."""


class DeviceProofError(DeviceDataError):
    """A proof bundle that does not check; `link` names the link of the chain that broke."""

    link = "proof"

    def __init__(self, reason: str) -> None:
        super().__init__(f"{self.link}: {reason}")
        self.reason = reason


class ProofBundleFormatError(DeviceProofError):
    """Not a proof bundle: bad JSON, a field missing, mistyped or not canonical."""

    link = "format"


class MilestoneSignatureError(DeviceProofError):
    """The milestone is not signed by a threshold of the committee in force at its index."""

    link = "milestone"


class RegistryPathError(DeviceProofError):
    """The registry entry and its path do not lead to the milestone's registry root."""

    link = "registry"


class DeviceNotActiveError(DeviceProofError):
    """The registry entry shows the device suspended, revoked or quarantined at that milestone."""

    link = "device status"


class ReadingSignatureError(DeviceProofError):
    """The reading is not signed by the device key the registry holds, for this network."""

    link = "reading"


class InclusionPathError(DeviceProofError):
    """The anchor message and its path do not lead to the milestone's inclusion root."""

    link = "inclusion"


class AnchorPayloadError(DeviceProofError):
    """The included message is not an anchor of a batch root on this network."""

    link = "anchor"


class BatchPathError(DeviceProofError):
    """The reading and its batch path do not lead to the root the anchor carries."""

    link = "batch"


class SealError(DeviceDataError):
    """Encrypted readings, data keys, grants and revocations."""


class SealFormatError(SealError):
    """Bytes that are not a canonical sealed reading, key envelope, grant or revocation."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"malformed sealed record: {reason}")
        self.reason = reason


class GrantSignatureError(SealError):
    """A grant or revocation that the stream's owner did not sign."""


class NoGrantError(SealError):
    """No data key for that stream and period is sealed to this reader."""

    def __init__(self, stream: int, period: int) -> None:
        super().__init__(f"no data key for stream {stream} period {period} is sealed to you")
        self.stream = stream
        self.period = period


class OpenError(SealError):
    """A ciphertext or a sealed data key that does not open (wrong key, or tampered)."""
