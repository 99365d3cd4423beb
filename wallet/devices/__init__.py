"""Device data on the tangle: readings signed by devices, gateways that verify them and anchor
Merkle batches of them, offline proofs from one reading up to the committee's signatures, and
sealed storage that only granted parties can read. Built on anyio (through the wallet client)
like the rest of the wallet library; the cores are sans-I/O. The public API is re-exported here;
the errors are in `wallet.devices.errors`."""

from tangle.protocol.proof_bundle import ProofBundle as ProofBundle
from tangle.protocol.proof_bundle import bundle_to_json as bundle_to_json

from .agent import DeviceAgent as DeviceAgent
from .agent import Profile as Profile
from .batch import Anchor as Anchor
from .batch import Batch as Batch
from .batch import anchor_payload as anchor_payload
from .batch import check_batch_path as check_batch_path
from .batch import read_anchor as read_anchor
from .collect import collect_bundle as collect_bundle
from .gateway import Accepted as Accepted
from .gateway import Gateway as Gateway
from .gateway import Refused as Refused
from .gateway import anchor_batch as anchor_batch
from .gateway_transport import GatewayTransport as GatewayTransport
from .proof import ProvedReading as ProvedReading
from .proof import build_bundle as build_bundle
from .proof import verify_bundle as verify_bundle
from .proof_file import Committee as Committee
from .proof_file import bundle_from_json as bundle_from_json
from .proof_file import committee_from_json as committee_from_json
from .proof_file import committee_to_json as committee_to_json
from .reading import Form as Form
from .reading import Reading as Reading
from .reading import SignedReading as SignedReading
from .reading import decode_signed as decode_signed
from .reading import encode_signed as encode_signed
from .reading import sign_reading as sign_reading
from .reading import verify_reading as verify_reading
from .sealed import Keyring as Keyring
from .sealed import StreamKeys as StreamKeys
from .sealed import StreamRecord as StreamRecord
