"""Pay-per-use over HTTP: the payee's terms (`offer`) and tariffs and meters (`metering`), signed
receipts (`receipt`), the 402 paywall (`paywall`) with the cashier that checks channels for it
(`cashier`), and the paying client: the httpx auth flow (`auth`) under the owner's budget and
funding policy (`budget`).
"""
