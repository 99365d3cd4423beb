"""Transports that carry the channel protocol: one-way TCP (`tcp`), two-way TCP (`twoway_tcp`)
and HTTP (`http`). Each is a thin adapter over `payments.channels` (the connection state machine,
the cores and the payee service); none holds protocol rules of its own.
"""
