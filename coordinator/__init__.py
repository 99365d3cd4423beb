"""Milestone issuance signed by a k-of-n committee of operators."""

from .errors import CoordinatorError as CoordinatorError
from .errors import JournalError as JournalError
from .errors import NotConfirmedError as NotConfirmedError
from .errors import NotEnoughSignersError as NotEnoughSignersError
from .journal import Issue as Issue
from .journal import Journal as Journal
from .service import Coordinator as Coordinator
from .signers import KeySigner as KeySigner
from .signers import sign_milestone as sign_milestone
