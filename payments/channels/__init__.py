"""Payment channels off the ledger: what two parties hold and say to each other.

The sans-I/O cores (`core`: terms and the one-way channel, `twoway`), their lifecycle (`state`),
the wire format (`wire`: events; `frames`: their bytes; `connection`: the session rules), the
durable store (`store`) and the payee service that every transport shares (`service`). Nothing
here opens a socket or reads the ledger; the sibling packages do (`transports`, `ledger`).
"""
