"""The error tree of the `tangle` package.

Every failure the package reports is one of these; callers catch `TangleError` to catch them all.

```
TangleError
├── DecodeError                  bytes that are not a canonical encoding
│   ├── TruncatedError           input ended inside a field
│   ├── TrailingBytesError       bytes left after the last field
│   ├── OversizedError           a length above its bound
│   ├── NonCanonicalError        valid meaning, forbidden spelling (unsorted, duplicate, ...)
│   ├── UnknownVersionError      protocol version this node does not speak
│   ├── UnknownTypeError         payload / output / unlock type not defined
│   └── MalformedError           a field decoded, but its value is not allowed
├── InvalidFieldError            a value out of its range (also raised by constructors)
├── WrongNetworkError            a message for another network
├── AddressError                 text that is not a bech32m address (bech32.py)
│   ├── UnknownNetworkError      no network has that name or prefix
│   ├── Bech32Error              not a valid bech32m string
│   │   ├── MixedCaseError       upper and lower case letters
│   │   ├── InvalidCharacterError  a character outside the allowed range or charset
│   │   ├── Bech32FormatError    no separator, empty prefix, short checksum, too long
│   │   ├── Bech32ChecksumError  the checksum does not verify
│   │   └── PaddingError         5-bit groups that do not end in at most 4 zero bits
│   ├── WrongPrefixError         another network's address
│   └── AddressLengthError       a payload that is not 32 bytes
├── WorkError
│   ├── InsufficientWorkError    the nonce does not meet the target
│   ├── WorkCancelledError       a nonce search was cancelled
│   └── NonceSpaceExhaustedError no valid nonce left up to 2**64 - 1
├── DagError
│   ├── DuplicateMessageError    message already attached
│   ├── DuplicatePayloadError    payload already has a live attachment (one gossip slot each)
│   ├── BelowMaxDepthError       a new message that could only attach below max depth
│   ├── PendingLimitError        no room to wait for parents (per source or in total)
│   ├── UnknownMessageError      no such message in the window
│   └── NoTipsError              tip selection found nothing to approve
├── LedgerError
│   ├── InvalidGenesisError      a genesis snapshot that breaks the supply rules
│   ├── InvalidTransactionError  a transaction no node may attach (bad signature, dust, ...)
│   ├── InvalidDeviceRecordError a registry record no node may attach (a forged signature)
│   ├── QuarantinedDeviceError   a new message signed by a quarantined device
│   ├── UnservedDeviceError      a constrained device's message not from its gateway
│   ├── GatewayNotServingError   a gateway handing in a device not behind it
│   └── GatewaySignatureError    a request naming a gateway it is not signed by
├── MilestoneError               a milestone no node may apply; nothing was applied
│   ├── IndexGapError            not the successor of the confirmed milestone
│   ├── StaleMilestoneError      an index this node has already confirmed
│   ├── ChainMismatchError       `previous` is not the id of the confirmed milestone
│   ├── UnknownSignerError       signed by a key outside the key set in force
│   ├── BadSignatureError        a committee signature that does not verify
│   ├── TooFewSignaturesError    fewer valid signatures than the threshold
│   ├── MissingConeError         part of its past cone is not known yet
│   ├── MilestoneTooFarAheadError  an index too far above the confirmed one to hold
│   ├── HeldMilestoneLimitError  too many held milestones whose signers are not yet judged
│   ├── EquivocationError        the committee signed two milestones for one index: stop
│   └── MerkleRootMismatchError  our white-flag result differs from the committee's: stop
│       ├── InclusionRootMismatchError  ... in the messages it references
│       └── RegistryRootMismatchError   ... in the device registry it leaves
├── StorageError                 the database is unusable or inconsistent
├── ConfigError                  a configuration file that cannot be used
├── StartupError                 a process that cannot start (a port taken, a database it
│                                cannot open); the message names the cause and the fix
├── NodeHaltedError              the node stopped after a fatal inconsistency
└── GossipError                  a peer broke the gossip protocol, or was refused (gossip.py)
    ├── FrameError               a frame that is not a canonical encoding (garbage, oversized)
    ├── UnexpectedFrameError     a frame the connection's state does not allow
    ├── HandshakeError           the peer is not one this node may talk to
    │   ├── ProtocolVersionMismatchError  another gossip protocol version
    │   ├── NetworkMismatchError          another network id
    │   ├── KeySetMismatchError           another committee (key-set digest)
    │   ├── SelfConnectionError           the peer is this node
    │   ├── DuplicateConnectionError      already connected to that node
    │   └── TooManyPeersError             no room for another peer
    ├── PeerTimeoutError
    │   ├── HandshakeTimeoutError         no handshake in time
    │   ├── FrameTimeoutError             a frame begun and not finished in time (slowloris)
    │   └── IdleTimeoutError              nothing received, not even a heartbeat
    ├── RateLimitedError         far above its frame or byte rate
    ├── SlowPeerError            does not read what this node sends
    ├── MisbehavingPeerError     sent a message the node refused for cause (work, signature, ...)
    └── PeerBannedError          a connection from or to a banned peer
```
"""

from __future__ import annotations


class TangleError(Exception):
    """Root of every error raised by the `tangle` package."""

    def __reduce__(self) -> tuple[object, ...]:
        # Subclasses take their own constructor arguments; rebuild from args and attributes
        # instead, so errors cross process boundaries (multiprocessing, pickling) intact.
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(
    cls: type[TangleError], args: tuple[object, ...], state: dict[str, object]
) -> TangleError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


# -- decoding --------------------------------------------------------------------------------


class DecodeError(TangleError):
    """The bytes are not a canonical encoding of the expected object."""


class TruncatedError(DecodeError):
    """The input ended inside a field."""

    def __init__(self, what: str, needed: int, available: int) -> None:
        super().__init__(f"truncated {what}: needed {needed} bytes, {available} left")
        self.what = what
        self.needed = needed
        self.available = available


class TrailingBytesError(DecodeError):
    """Bytes remain after the last field."""

    def __init__(self, what: str, extra: int) -> None:
        super().__init__(f"{extra} trailing bytes after {what}")
        self.what = what
        self.extra = extra


class OversizedError(DecodeError):
    """A length (of the whole input or of a field) is above its bound."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(f"{what} is {size}, above the limit of {limit}")
        self.what = what
        self.size = size
        self.limit = limit


class NonCanonicalError(DecodeError):
    """The input has a valid meaning but not its one canonical spelling."""


class UnknownVersionError(DecodeError):
    """A protocol version this implementation does not speak."""

    def __init__(self, version: int) -> None:
        super().__init__(f"unknown protocol version {version}")
        self.version = version


class UnknownTypeError(DecodeError):
    """A type tag (payload, output, unlock, ...) that is not defined."""

    def __init__(self, what: str, tag: int) -> None:
        super().__init__(f"unknown {what} type {tag}")
        self.what = what
        self.tag = tag


class MalformedError(DecodeError):
    """A field was read, but its value is not allowed (wraps the `InvalidFieldError`)."""


# -- field values ----------------------------------------------------------------------------


class InvalidFieldError(TangleError):
    """A field value is outside its allowed range."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"invalid {field}: {reason}")
        self.field = field
        self.reason = reason


class WrongNetworkError(TangleError):
    """An object that belongs to another network."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"network id {got} does not match this network ({expected})")
        self.expected = expected
        self.got = got


# -- addresses -------------------------------------------------------------------------------


class AddressError(TangleError):
    """Text that is not a bech32m address (of the expected network)."""


class UnknownNetworkError(AddressError):
    """No network has that name (or human-readable prefix)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown network {name!r}")
        self.name = name


class Bech32Error(AddressError):
    """The text is not a valid bech32m string (BIP-173 with the BIP-350 constant)."""


class MixedCaseError(Bech32Error):
    """Both upper and lower case letters; bech32 strings are all one case."""

    def __init__(self) -> None:
        super().__init__("bech32m string mixes upper and lower case")


class InvalidCharacterError(Bech32Error):
    """A prefix character outside ASCII 33..126, or a data character outside the charset."""

    def __init__(self, position: int, code_point: int) -> None:
        super().__init__(f"invalid character U+{code_point:04X} at position {position}")
        self.position = position
        self.code_point = code_point


class Bech32FormatError(Bech32Error):
    """No separator, an empty prefix, a checksum under 6 characters, or over 90 characters."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"malformed bech32m string: {reason}")
        self.reason = reason


class Bech32ChecksumError(Bech32Error):
    """The checksum does not verify (a typo, or a bech32 rather than bech32m string)."""

    def __init__(self) -> None:
        super().__init__("bech32m checksum does not verify")


class PaddingError(Bech32Error):
    """Converting 5-bit groups to bytes left 5 or more bits, or non-zero bits."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid padding: {reason}")
        self.reason = reason


class WrongPrefixError(AddressError):
    """A valid bech32m string whose human-readable prefix is not the expected network's."""

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(f"address prefix {got!r} is not this network's {expected!r}")
        self.expected = expected
        self.got = got


class AddressLengthError(AddressError):
    """The decoded payload is not 32 bytes."""

    def __init__(self, size: int) -> None:
        super().__init__(f"address payload is {size} bytes, expected 32")
        self.size = size


# -- proof of work ---------------------------------------------------------------------------


class WorkError(TangleError):
    """Proof-of-work failures."""


class InsufficientWorkError(WorkError):
    """The nonce does not meet the message's target."""

    def __init__(self, value: int, target: int) -> None:
        super().__init__(f"work value {value:#018x} is above the target {target:#018x}")
        self.value = value
        self.target = target


class WorkCancelledError(WorkError):
    """A nonce search was cancelled before it found a nonce."""


class NonceSpaceExhaustedError(WorkError):
    """A nonce search reached 2**64 - 1 without finding a valid nonce."""


# -- the DAG ---------------------------------------------------------------------------------


class DagError(TangleError):
    """Failures of the message window (attach, lookup, tip selection)."""


class DuplicateMessageError(DagError):
    """The message is already in the window."""


class DuplicatePayloadError(DagError):
    """The payload already has a live attachment in the window (one gossip slot per payload)."""


class BelowMaxDepthError(DagError):
    """A new message whose past cone is below max depth: no milestone can confirm it (a replay
    of history, or a message attached to stale parents)."""


class PendingLimitError(DagError):
    """A message whose parents are missing, from a source (or a node) that already has as many
    messages waiting as it may."""


class UnknownMessageError(DagError):
    """No message with that id is in the window."""


class NoTipsError(DagError):
    """Tip selection found no message to approve."""


# -- ledger ----------------------------------------------------------------------------------


class LedgerError(TangleError):
    """Failures of the UTXO ledger."""


class InvalidGenesisError(LedgerError):
    """A genesis snapshot that does not mint exactly the supply into valid outputs."""


class InvalidTransactionError(LedgerError):
    """A transaction that can never be applied (checked before a node attaches it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid transaction: {reason}")
        self.reason = reason


class InvalidDeviceRecordError(LedgerError):
    """A device registry record no node may attach: a signature that does not verify."""


class QuarantinedDeviceError(LedgerError):
    """A new message signed by a device under quarantine: not attached, worked or relayed."""

    def __init__(self, device_id: bytes, until: int) -> None:
        super().__init__(f"device {device_id.hex()} is quarantined until milestone {until}")
        self.device_id = device_id
        self.until = until


class UnservedDeviceError(LedgerError):
    """A message a constrained device signed, handed to a node by anyone but its gateway:
    constrained devices reach the ledger only through the gateway they are registered behind."""

    def __init__(self, device_id: bytes, gateway: bytes) -> None:
        super().__init__(
            f"device {device_id.hex()} is constrained: only its gateway {gateway.hex()} "
            "submits for it"
        )
        self.device_id = device_id
        self.gateway = gateway


class GatewayNotServingError(LedgerError):
    """A gateway handed in a message of a device not registered behind it (a full-function
    device submits itself), or the gateway itself is not active or is quarantined."""

    def __init__(self, gateway: bytes, device_id: bytes) -> None:
        super().__init__(
            f"gateway {gateway.hex()} does not serve device {device_id.hex()} at the "
            "confirmed milestone"
        )
        self.gateway = gateway
        self.device_id = device_id


class GatewaySignatureError(LedgerError):
    """A request that names a gateway but is not signed by that gateway's current key."""


# -- milestones ------------------------------------------------------------------------------


class MilestoneError(TangleError):
    """A milestone that must not be applied; the ledger is unchanged."""


class IndexGapError(MilestoneError):
    """The milestone is not the successor of the confirmed milestone."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"milestone index {got}, expected {expected}")
        self.expected = expected
        self.got = got


class StaleMilestoneError(MilestoneError):
    """A milestone for an index that is already confirmed."""

    def __init__(self, index: int, confirmed: int) -> None:
        super().__init__(f"milestone {index} is at or below the confirmed index {confirmed}")
        self.index = index
        self.confirmed = confirmed


class NodeHaltedError(TangleError):
    """The node stopped after a fatal inconsistency and refuses further input."""


class ChainMismatchError(MilestoneError):
    """The milestone's `previous` is not the confirmed milestone's id."""


class UnknownSignerError(MilestoneError):
    """A signature by a key that is not in the key set in force at the milestone's index."""

    def __init__(self, public_key: bytes, index: int) -> None:
        super().__init__(f"key {public_key.hex()} is not in the key set for milestone {index}")
        self.public_key = public_key
        self.index = index


class BadSignatureError(MilestoneError):
    """A committee signature that does not verify."""

    def __init__(self, public_key: bytes) -> None:
        super().__init__(f"signature by {public_key.hex()} does not verify")
        self.public_key = public_key


class TooFewSignaturesError(MilestoneError):
    """Fewer valid committee signatures than the threshold."""

    def __init__(self, valid: int, threshold: int) -> None:
        super().__init__(f"{valid} valid signatures, {threshold} required")
        self.valid = valid
        self.threshold = threshold


class MissingConeError(MilestoneError):
    """The milestone's past cone has messages this node does not have yet."""

    def __init__(self, missing: frozenset[bytes]) -> None:
        super().__init__(f"{len(missing)} messages of the past cone are missing")
        self.missing = missing


class MilestoneTooFarAheadError(MilestoneError):
    """A milestone too far above the confirmed index to hold until its turn."""

    def __init__(self, index: int, confirmed: int, lookahead: int) -> None:
        super().__init__(
            f"milestone {index} is more than {lookahead} above the confirmed index {confirmed}"
        )
        self.index = index
        self.confirmed = confirmed


class HeldMilestoneLimitError(MilestoneError):
    """Too many milestones are held whose signers are not the committee of their index as far
    as the applied chain tells; more are refused until those are judged."""


class EquivocationError(MilestoneError):
    """Two milestones for one index, each signed as the committee of that index must sign:
    proof that the committee (or its keys) misbehaved. The node stops applying milestones."""

    def __init__(self, index: int, first: bytes, second: bytes, *, repeated: bool = False) -> None:
        super().__init__(
            f"equivocation at milestone {index}: {first.hex()} and {second.hex()} are both "
            "signed by the committee" + (" (seen before)" if repeated else "")
        )
        self.index = index
        self.first = first
        """Id of the milestone applied or held first."""
        self.second = second
        """Id of the other one."""
        self.repeated = repeated
        """True if this pair was reported before (the evidence is kept once)."""


class MerkleRootMismatchError(MilestoneError):
    """This node's white-flag result differs from the milestone's: the node must stop."""

    def __init__(self, index: int, expected: bytes, computed: bytes) -> None:
        super().__init__(
            f"milestone {index}: applied Merkle root {computed.hex()} differs from the "
            f"committee's {expected.hex()}; refusing to continue"
        )
        self.index = index
        self.expected = expected
        self.computed = computed


class InclusionRootMismatchError(MerkleRootMismatchError):
    """The messages this node finds in the milestone's cone are not the ones it commits to."""

    def __init__(self, index: int, expected: bytes, computed: bytes) -> None:
        MilestoneError.__init__(
            self,
            f"milestone {index}: inclusion root {computed.hex()} differs from the committee's "
            f"{expected.hex()}; refusing to continue",
        )
        self.index = index
        self.expected = expected
        self.computed = computed


class RegistryRootMismatchError(MerkleRootMismatchError):
    """The registry this node reaches differs from the one the milestone commits to."""

    def __init__(self, index: int, expected: bytes, computed: bytes) -> None:
        MilestoneError.__init__(
            self,
            f"milestone {index}: registry root {computed.hex()} differs from the committee's "
            f"{expected.hex()}; refusing to continue",
        )
        self.index = index
        self.expected = expected
        self.computed = computed


# -- configuration ---------------------------------------------------------------------------


class ConfigError(TangleError):
    """A configuration file that is missing, not JSON, or has a bad or unknown key."""


class StartupError(TangleError):
    """A process that cannot start: a port taken, a database it cannot open."""


# -- storage ---------------------------------------------------------------------------------


class StorageError(TangleError):
    """The database is unusable, of another network, or inconsistent."""


# -- gossip ----------------------------------------------------------------------------------


class GossipError(TangleError):
    """A peer broke the gossip protocol or was refused; the connection is closed."""


class FrameError(GossipError):
    """A frame that is not a canonical encoding (the `DecodeError` is its `__cause__`)."""

    def __init__(self, frame_type: int | None, reason: str) -> None:
        what = "frame" if frame_type is None else f"frame of type {frame_type}"
        super().__init__(f"bad {what}: {reason}")
        self.frame_type = frame_type
        self.reason = reason


class UnexpectedFrameError(GossipError):
    """A well-formed frame that the connection's state does not allow (e.g. before the
    handshake, or a second handshake)."""


class HandshakeError(GossipError):
    """The peer's handshake shows a node this node may not talk to."""


class ProtocolVersionMismatchError(HandshakeError):
    """The peer speaks another gossip protocol version."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"gossip protocol version {got}, this node speaks {expected}")
        self.expected = expected
        self.got = got


class NetworkMismatchError(HandshakeError):
    """The peer belongs to another network."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"peer is on network {got}, this node on {expected}")
        self.expected = expected
        self.got = got


class KeySetMismatchError(HandshakeError):
    """The peer follows another coordinator committee."""

    def __init__(self, expected: bytes, got: bytes) -> None:
        super().__init__(f"committee key-set digest {got.hex()}, expected {expected.hex()}")
        self.expected = expected
        self.got = got


class SelfConnectionError(HandshakeError):
    """The peer is this node (its node id is ours)."""


class DuplicateConnectionError(HandshakeError):
    """Another connection to the same node id is kept instead of this one."""


class TooManyPeersError(HandshakeError):
    """The node already has as many peers as it is configured for."""


class PeerTimeoutError(GossipError):
    """The peer did not send what it had to in time."""

    def __init__(self, what: str, seconds: float) -> None:
        super().__init__(f"{what} within {seconds:g} s")
        self.seconds = seconds


class HandshakeTimeoutError(PeerTimeoutError):
    """No handshake arrived in time."""


class FrameTimeoutError(PeerTimeoutError):
    """A frame was begun and not finished in time (slowloris)."""


class IdleTimeoutError(PeerTimeoutError):
    """Nothing arrived for too long, not even a heartbeat."""


class RateLimitedError(GossipError):
    """The peer sent far more frames or bytes than its rate allows."""

    def __init__(self, what: str, rate: float, burst: float) -> None:
        super().__init__(f"{what} above {rate:g}/s with a burst of {burst:g}")
        self.what = what
        self.rate = rate
        self.burst = burst


class SlowPeerError(GossipError):
    """The peer does not read what this node sends (its queue stayed full)."""


class MisbehavingPeerError(GossipError):
    """The peer sent a message the node refused for cause (the refusal is `__cause__`)."""


class PeerBannedError(GossipError):
    """A connection from or to a peer that is banned."""

    def __init__(self, peer: str, until: float) -> None:
        super().__init__(f"peer {peer} is banned until {until:.1f}")
        self.peer = peer
        self.until = until
