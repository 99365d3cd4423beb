"""The proof-of-work solver: the nonce search over the Numba kernel, and its async wrapper.

The rule it satisfies is `tangle.protocol.pow`; this package is the one way to search for a
nonce (threads, Numba), kept apart so the protocol loads neither.
"""

from .solver import DEFAULT_BATCH as DEFAULT_BATCH
from .solver import MAX_BATCH as MAX_BATCH
from .solver import kernel_work_hash as kernel_work_hash
from .solver import max_threads as max_threads
from .solver import search as search
from .solver import search_range as search_range
from .solver import solve as solve
from .solver import warm_up as warm_up
