"""Channels on the ledger: opening, topping up and closing them through a wallet (`funder`),
watching the ledger to answer a close with the newest proof (`watch`), and feeding the ledger's
view of each channel into the payee service (`feed`).
"""
