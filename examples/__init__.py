"""Runnable examples of pay-per-use on tanglepay (`python -m examples.NAME --help`)."""
