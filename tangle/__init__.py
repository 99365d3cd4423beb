"""The tangle: the ledger protocol and the node that runs it, one subpackage per layer.

```
protocol   message format, ids, codec, signatures, payloads, transactions, milestones, PoW rule
ledger     UTXO and channel rules, white flag, committee key schedule, milestone records
window     the DAG window (solidity, pending table), tip scoring and tip selection
work       the proof-of-work solver (Numba kernel, worker threads)
storage    sqlite storage and snapshots
node       the sans-I/O node core, the node over storage, the trio runtime, node config
p2p        gossip frames and peer state machines, peer links, relay, admission, sync
http       the HTTP API: app, views, OpenAPI document, event stream, batch and PoW endpoints
service    the node process: storage, node, p2p and the HTTP API wired together
```

Each subpackage re-exports its public API; `docs/ARCHITECTURE.md` draws the allowed imports
(tested by `tests/test_layout.py`). Errors of every layer are in `tangle.errors`. This module
stays light (no Numba, no sqlite, no trio): it only sets Numba's cache folder, before any
module of ours imports Numba (`_numba_cache`).
"""

from ._numba_cache import numba_cache_dir as numba_cache_dir
