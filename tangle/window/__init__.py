"""The DAG window: messages between the solid entry points and the tips, solidity and the
pending table, tip scores, and tip selection (reference and Numba kernels).
"""

from .dag import GENESIS_ID as GENESIS_ID
from .dag import Dag as Dag
from .tip_pool import Score as Score
from .tip_pool import TipRules as TipRules
from .tip_selection import TipSelector as TipSelector
from .tip_selection import UniformRandomTips as UniformRandomTips
from .tip_selection import WeightedWalk as WeightedWalk
