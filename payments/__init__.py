"""Payments over tangle channels, by concern; the public API is re-exported here.

```
errors.py     the one error tree (PaymentError); imports nothing of the package
channels/     what two parties hold and say off the ledger: the sans-I/O cores (one-way, two-way),
              their states, the wire format and the connection rules, the durable store, and the
              payee service every transport shares
transports/   thin adapters carrying the channel protocol: one-way TCP, two-way TCP, HTTP
ledger/       channels on the ledger through a wallet: the funder (open, top up, close), the
              watch service that answers a close, the feed of the ledger into the payee service
payperuse/    HTTP 402 pay-per-use on top: offers and tariffs, meters, receipts, the paywall and
              its cashier, the paying httpx auth flow under a budget
```

`channels/` imports only `errors`; `transports/`, `ledger/` and `payperuse/` import `channels/`
and `errors`, never each other (tests/payments/test_layout.py checks these arrows). Roaming
settlement or EV billing would sit beside `payperuse/` as siblings of their own.
"""

from .channels.connection import CLOSED as CLOSED
from .channels.connection import NEED_DATA as NEED_DATA
from .channels.connection import Closed as Closed
from .channels.connection import Connection as Connection
from .channels.connection import NeedData as NeedData
from .channels.connection import SessionState as SessionState
from .channels.core import ChannelTerms as ChannelTerms
from .channels.core import PayeeChannel as PayeeChannel
from .channels.core import PayerChannel as PayerChannel
from .channels.core import check_binding as check_binding
from .channels.core import check_signed as check_signed
from .channels.frames import decode_frame as decode_frame
from .channels.frames import encode_event as encode_event
from .channels.service import Credit as Credit
from .channels.service import PayeeService as PayeeService
from .channels.service import Taken as Taken
from .channels.service import reject_code as reject_code
from .channels.state import TRANSITIONS as TRANSITIONS
from .channels.state import ChannelState as ChannelState
from .channels.state import Role as Role
from .channels.state import transition as transition
from .channels.store import ChannelRecord as ChannelRecord
from .channels.store import ChannelStore as ChannelStore
from .channels.store import StoreStats as StoreStats
from .channels.store import read_records as read_records
from .channels.twoway import Proposal as Proposal
from .channels.twoway import TwoWayChannel as TwoWayChannel
from .channels.wire import PROTOCOL_VERSION as PROTOCOL_VERSION
from .channels.wire import Ack as Ack
from .channels.wire import Countersign as Countersign
from .channels.wire import Event as Event
from .channels.wire import Hello as Hello
from .channels.wire import Pay as Pay
from .channels.wire import Propose as Propose
from .channels.wire import Reject as Reject
from .channels.wire import RejectCode as RejectCode
from .channels.wire import decode_signed_proof as decode_signed_proof
from .channels.wire import encode_signed_proof as encode_signed_proof
from .errors import BalanceDecreasedError as BalanceDecreasedError
from .errors import BelowMinimumOutputError as BelowMinimumOutputError
from .errors import BillingError as BillingError
from .errors import BudgetExceededError as BudgetExceededError
from .errors import ChannelClosedError as ChannelClosedError
from .errors import ChannelExpiringError as ChannelExpiringError
from .errors import ChannelFrameError as ChannelFrameError
from .errors import ChannelKindError as ChannelKindError
from .errors import ChannelStateError as ChannelStateError
from .errors import ConnectionClosedError as ConnectionClosedError
from .errors import CounterpartyRejectedError as CounterpartyRejectedError
from .errors import FundingError as FundingError
from .errors import InsufficientDepositError as InsufficientDepositError
from .errors import InsufficientPaymentError as InsufficientPaymentError
from .errors import InvalidAmountError as InvalidAmountError
from .errors import InvalidProofError as InvalidProofError
from .errors import InvalidTermsError as InvalidTermsError
from .errors import InvalidTransitionError as InvalidTransitionError
from .errors import MalformedPaymentError as MalformedPaymentError
from .errors import MalformedReceiptError as MalformedReceiptError
from .errors import MeterOverflowError as MeterOverflowError
from .errors import NoPendingProposalError as NoPendingProposalError
from .errors import OfferError as OfferError
from .errors import OverchargeError as OverchargeError
from .errors import PayerError as PayerError
from .errors import PaymentError as PaymentError
from .errors import PaymentInDoubtError as PaymentInDoubtError
from .errors import PaymentRejectedError as PaymentRejectedError
from .errors import PaywallError as PaywallError
from .errors import ProofError as ProofError
from .errors import ProtocolError as ProtocolError
from .errors import ReceiptError as ReceiptError
from .errors import ReceiptMismatchError as ReceiptMismatchError
from .errors import ReceiptSignatureError as ReceiptSignatureError
from .errors import StaleProofError as StaleProofError
from .errors import StoreError as StoreError
from .errors import TariffError as TariffError
from .errors import UnacceptableChannelError as UnacceptableChannelError
from .errors import UnexpectedChannelFrameError as UnexpectedChannelFrameError
from .errors import UnknownChannelError as UnknownChannelError
from .errors import VersionMismatchError as VersionMismatchError
from .errors import WrongChannelError as WrongChannelError
from .errors import WrongParityError as WrongParityError
from .ledger.feed import LedgerUpdate as LedgerUpdate
from .ledger.feed import ledger_update as ledger_update
from .ledger.feed import run_ledger_feed as run_ledger_feed
from .ledger.funder import ChannelPolicy as ChannelPolicy
from .ledger.funder import LedgerFunder as LedgerFunder
from .ledger.watch import Watchtower as Watchtower
from .ledger.watch import run_watch_service as run_watch_service
from .payperuse.auth import PaymentAuth as PaymentAuth
from .payperuse.budget import Budget as Budget
from .payperuse.budget import ChannelFunder as ChannelFunder
from .payperuse.budget import FundingPolicy as FundingPolicy
from .payperuse.cashier import Cashier as Cashier
from .payperuse.cashier import ChannelDirectory as ChannelDirectory
from .payperuse.cashier import LedgerDirectory as LedgerDirectory
from .payperuse.metering import Invoice as Invoice
from .payperuse.metering import Meter as Meter
from .payperuse.metering import PayerMeter as PayerMeter
from .payperuse.metering import Tariff as Tariff
from .payperuse.offer import ChannelRequirements as ChannelRequirements
from .payperuse.offer import Offer as Offer
from .payperuse.offer import parse_offer as parse_offer
from .payperuse.paywall import Paywall as Paywall
from .payperuse.paywall import refusal_of as refusal_of
from .payperuse.receipt import Receipt as Receipt
from .payperuse.receipt import ReceiptKind as ReceiptKind
from .payperuse.receipt import issue_receipt as issue_receipt
from .payperuse.receipt import receipt_from_header as receipt_from_header
from .payperuse.receipt import receipt_to_header as receipt_to_header
from .transports.http import HttpPayer as HttpPayer
from .transports.http import payee_app as payee_app
from .transports.http import post_proof as post_proof
from .transports.tcp import PayerClient as PayerClient
from .transports.tcp import open_payer as open_payer
from .transports.tcp import serve_payee as serve_payee
from .transports.twoway_tcp import TwoWaySession as TwoWaySession
from .transports.twoway_tcp import open_two_way as open_two_way
from .transports.twoway_tcp import serve_two_way as serve_two_way
