"""`python -m examples.charging --self-contained --json --rounds 2` runs end to end on a devnet of
its own: the pay-as-you-charge driver paid exactly the tariff's price of the energy metered, with a
checked receipt per increment; the prepaid session was stopped by the CSMS; the bills agree with
the payments; the channel is open on the ledger with the deposit the driver holds. The second
round runs against the same CSMS and devnet, as the devnet's charging flow runs rounds forever:
the driver's card moves to the round's new channel (it once failed there with 403
token_binding) and both sessions are paid and billed again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._programs import run_json

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_the_charging_example_pays_as_it_charges_and_prepaid() -> None:
    doc = run_json(
        "-m", "examples.charging", "--self-contained", "--json", "--rounds", "2", timeout=300
    )
    live = doc["pay_as_you_charge"]
    assert live["energy_wh"] == 6_600
    assert live["paid"] == live["owed_by_tariff"] == 1_980
    assert live["receipts_checked"] == 6
    assert doc["prepaid"]["stop_requested_by_csms"] is True
    assert doc["prepaid"]["start_status"] == "Accepted"
    bills = {(c["charge_point"], c["transaction_id"]): c["amount"] for c in doc["cdrs"]}
    assert bills[("CP-201", "S-1")] == live["paid"]
    prepaid = doc["prepaid"]["prepaid"] + doc["prepaid_refund"]["prepaid"]
    assert doc["channel"]["paid_to_cpo"] == live["paid"] + prepaid
    assert doc["ledger"]["ledger_deposit"] == doc["channel"]["deposit"]
    assert doc["ledger"]["ledger_closing"] is False
    commitment = doc["ledger_commitment"]  # the record hashes to the ledger's digest
    assert (commitment["energy_wh"], commitment["amount"]) == (6_600, live["paid"])
    assert commitment["signed_readings_verified"] == 8  # start, 6 updates, end
    assert commitment["energy_proven_by_meter_signatures"] is True
    assert doc["verify_session_cli"] == commitment  # `tanglepay charging verify-session`
    roaming = doc["roaming"]  # an eMSP's driver: the CDR reaches the eMSP, the month is settled
    assert roaming["start_status"] == "Accepted"
    [cdr] = roaming["cdrs_received_by_emsp"]
    assert cdr["energy_wh"] == 4_250
    assert bills[("CP-201", next(b for b in bills if b[1].startswith("R-"))[1])] == cdr["total"]
    assert roaming["settled_over_two_way_channel"] == cdr["total"]
    assert roaming["channel_payee_balance"] == cdr["total"]
    assert roaming["settlement_due_after"] == 0
    refund = doc["prepaid_refund"]  # unplugged after 1.2 of 10 kWh prepaid
    assert refund["refunded_on_ledger"] == refund["prepaid"] - refund["billed"] == 3_000 - 360
    [second] = doc["later_rounds"]
    live = second["pay_as_you_charge"]
    assert live["energy_wh"] == 6_600
    assert live["paid"] == live["owed_by_tariff"] == 1_980
    assert live["receipts_checked"] == 6
    assert second["prepaid"]["start_status"] == "Accepted"
    assert second["prepaid"]["stop_requested_by_csms"] is True
    bills = {(c["charge_point"], c["transaction_id"]): c["amount"] for c in second["cdrs"]}
    assert bills[("CP-201", "S-2")] == live["paid"]
    assert second["channel"]["paid_to_cpo"] == live["paid"] + 450 + 3_000
    assert second["ledger"]["ledger_deposit"] == second["channel"]["deposit"]
    assert second["ledger_commitment"]["amount"] == live["paid"]
    assert second["ledger_commitment"]["energy_proven_by_meter_signatures"] is True
    refund = second["prepaid_refund"]
    assert refund["refunded_on_ledger"] == refund["prepaid"] - refund["billed"] == 3_000 - 360
