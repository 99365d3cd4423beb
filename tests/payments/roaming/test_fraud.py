"""Fraud rules: each fires on a constructed scenario and stays quiet on the near miss beside it;
the tables stay within their bounds under a flood of subscribers, partners and bars."""

from __future__ import annotations

import pytest

from payments.roaming import EventType, SubscriberHasher, UsageRecord
from payments.roaming.errors import FraudConfigError
from payments.roaming.fraud import Alert, AlertKind, FraudConfig, FraudMonitor
from payments.roaming.record import NO_MSISDN

HASHER = SubscriberHasher(salt=b"fraud-test-salt!")
T0 = 1_767_225_600
HOUR = 3600
CONFIG = FraudConfig(
    data_volume_limit=1_000_000,
    call_seconds_limit=3_600,
    imsi_spend_cap=10_000,
    partner_spend_cap=50_000,
)


def imsi(n: int) -> bytes:
    return HASHER.imsi(f"20801{n:010d}")


def data(
    n: int,
    start: int,
    volume: int,
    *,
    network: str = "DEUD1",
    sender: str = "DEUD1",
    charge: int = 0,
) -> UsageRecord:
    return UsageRecord(
        sender=sender,
        recipient="FRAF1",
        imsi_hash=imsi(n),
        msisdn_hash=NO_MSISDN,
        event_type=EventType.DATA,
        start_utc=start,
        duration_s=60,
        volume_up=volume // 2,
        volume_down=volume - volume // 2,
        apn="iot.example",
        serving_network=network,
        charge=charge,
    )


def call(
    n: int, start: int, seconds: int, *, network: str = "DEUD1", charge: int = 0
) -> UsageRecord:
    return UsageRecord(
        sender="DEUD1",
        recipient="FRAF1",
        imsi_hash=imsi(n),
        msisdn_hash=NO_MSISDN,
        event_type=EventType.MOC,
        start_utc=start,
        duration_s=seconds,
        volume_up=0,
        volume_down=0,
        apn="",
        serving_network=network,
        charge=charge,
    )


def kinds(alerts: list[Alert]) -> list[AlertKind]:
    return [a.kind for a in alerts]


def test_high_data_usage_within_four_hours_fires_once() -> None:
    monitor = FraudMonitor(CONFIG)
    records = [data(1, T0 + i * HOUR, 300_000) for i in range(4)]
    fired = [monitor.observe(r, now=r.start_utc + 60) for r in records]
    assert [kinds(a) for a in fired] == [[], [], [], [AlertKind.HIGH_USAGE]]
    (alert,) = fired[3]
    assert (alert.value, alert.limit, alert.imsi_hash, alert.partner) == (
        1_200_000,
        1_000_000,
        imsi(1),
        "DEUD1",
    )
    assert alert.evidence == tuple(r.event_id for r in records)
    # Past the threshold already: no second alert for the same crossing.
    assert monitor.observe(data(1, T0 + 3 * HOUR + 120, 10), now=T0 + 3 * HOUR + 180) == []


def test_the_same_usage_spread_over_more_than_four_hours_is_quiet() -> None:
    monitor = FraudMonitor(CONFIG)
    for i in range(4):
        start = T0 + i * 90 * 60  # 0, 1.5 h, 3 h, 4.5 h: at most three within any 4 hours
        assert monitor.observe(data(1, start, 300_000), now=start + 60) == []


def test_high_call_seconds() -> None:
    monitor = FraudMonitor(CONFIG)
    assert monitor.observe(call(1, T0, 3_599), now=T0 + 3_600) == []
    assert kinds(monitor.observe(call(1, T0 + 3_700, 1), now=T0 + 3_800)) == [AlertKind.HIGH_USAGE]


def test_cloned_sim_in_two_networks_at_once() -> None:
    monitor = FraudMonitor(CONFIG)
    first = call(1, T0, 600, network="DEUD1")
    assert monitor.observe(first, now=T0 + 600) == []
    clone = call(1, T0 + 300, 600, network="ITAIT")
    (alert,) = monitor.observe(clone, now=T0 + 900)
    assert alert.kind is AlertKind.CLONED_SIM
    assert alert.evidence == (first.event_id, clone.event_id)


def test_back_to_back_in_two_networks_is_not_a_clone() -> None:
    monitor = FraudMonitor(CONFIG)
    monitor.observe(call(1, T0, 600, network="DEUD1"), now=T0 + 600)
    assert monitor.observe(call(1, T0 + 600, 600, network="ITAIT"), now=T0 + 1200) == []
    # Overlapping, but in the same network: not a clone either.
    assert monitor.observe(call(1, T0 + 650, 60, network="ITAIT"), now=T0 + 1200) == []
    # Another subscriber at the same time elsewhere: quiet.
    assert monitor.observe(call(2, T0 + 100, 60, network="FRAF2"), now=T0 + 1200) == []


def test_usage_after_a_bar() -> None:
    monitor = FraudMonitor(CONFIG)
    monitor.bar(imsi(1), T0)
    assert monitor.observe(call(1, T0 - 120, 60), now=T0 + 10) == []
    assert kinds(monitor.observe(call(1, T0, 60), now=T0 + 100)) == [AlertKind.USAGE_AFTER_BAR]
    monitor.unbar(imsi(1))
    assert monitor.observe(call(1, T0 + 200, 60), now=T0 + 300) == []


def test_unknown_imsi_range_flag() -> None:
    monitor = FraudMonitor(CONFIG)
    record = call(1, T0, 60)
    (alert,) = monitor.observe(record, now=T0, unknown_range=True)
    assert (alert.kind, alert.evidence) == (AlertKind.UNKNOWN_IMSI_RANGE, (record.event_id,))
    assert monitor.observe(call(1, T0 + 100, 60), now=T0 + 100) == []


def test_imsi_spend_cap() -> None:
    monitor = FraudMonitor(CONFIG)
    assert monitor.observe(call(1, T0, 60, charge=9_999), now=T0 + 60) == []
    assert kinds(monitor.observe(call(1, T0 + 100, 60, charge=1), now=T0 + 160)) == [
        AlertKind.IMSI_SPEND_CAP
    ]


def test_partner_spend_cap_over_many_subscribers() -> None:
    monitor = FraudMonitor(CONFIG)
    for n in range(9):
        assert monitor.observe(data(n, T0 + n, 10, charge=5_000), now=T0 + 100) == []
    (alert,) = monitor.observe(data(9, T0 + 9, 10, charge=5_000), now=T0 + 100)
    assert (alert.kind, alert.imsi_hash, alert.value) == (AlertKind.PARTNER_SPEND_CAP, None, 50_000)
    # Another partner has its own cap.
    assert (
        monitor.observe(
            data(10, T0, 10, sender="ITAIT", network="ITAIT", charge=5_000), now=T0 + 100
        )
        == []
    )


def test_a_late_record_does_not_count_towards_usage() -> None:
    monitor = FraudMonitor(CONFIG)
    late = data(1, T0, 2_000_000)
    assert monitor.observe(late, now=T0 + 5 * HOUR) == []
    monitor.bar(imsi(1), T0 - 10)
    assert kinds(monitor.observe(data(1, T0 + 1, 10), now=T0 + 5 * HOUR)) == [
        AlertKind.USAGE_AFTER_BAR
    ]


def test_tables_stay_bounded_under_a_flood() -> None:
    config = FraudConfig(
        data_volume_limit=10**12,
        call_seconds_limit=10**9,
        imsi_spend_cap=10**12,
        partner_spend_cap=10**12,
        max_imsis=500,
        max_imsis_per_partner=200,
        max_partners=20,
        max_bars=100,
        recent_per_imsi=4,
    )
    monitor = FraudMonitor(config)
    senders = [f"AA{chr(65 + i // 26)}{chr(65 + i % 26)}1"[:5] for i in range(60)]
    for n in range(3_000):
        sender = senders[n % len(senders)]
        monitor.observe(data(n, T0 + n, 10, sender=sender, network=sender), now=T0 + n)
        monitor.bar(imsi(100_000 + n), T0)
        sizes = monitor.sizes
        assert sizes["imsis"] <= 500
        assert sizes["largest_partner_imsis"] <= 200
        assert sizes["partners"] <= 20
        assert sizes["bars"] <= 100
    # One subscriber flooding: its recent records and buckets stay bounded too.
    for i in range(2_000):
        monitor.observe(data(7, T0 + 3_000 + i * 30, 10, sender="DEUD1"), now=T0 + 3_000 + i * 30)
    assert monitor.sizes["imsis"] <= 500


def test_one_partner_cannot_push_out_the_others() -> None:
    config = FraudConfig(
        data_volume_limit=10**12,
        call_seconds_limit=10**9,
        imsi_spend_cap=10**12,
        partner_spend_cap=10**12,
        max_imsis=300,
        max_imsis_per_partner=100,
    )
    monitor = FraudMonitor(config)
    monitor.observe(data(1, T0, 10, sender="ITAIT", network="ITAIT"), now=T0)
    for n in range(2, 1_000):
        monitor.observe(data(n, T0, 10), now=T0)
    assert monitor.sizes["largest_partner_imsis"] == 100
    # The other partner's subscriber is still tracked: a clone against it is still caught.
    (alert,) = monitor.observe(data(1, T0 + 30, 10, network="DEUD1"), now=T0 + 30)
    assert alert.kind is AlertKind.CLONED_SIM


def test_subscribers_leave_after_the_window() -> None:
    monitor = FraudMonitor(CONFIG)
    for n in range(50):
        monitor.observe(call(n, T0, 60), now=T0)
    monitor.observe(call(99, T0 + 5 * HOUR, 60), now=T0 + 5 * HOUR)
    assert monitor.sizes["imsis"] == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"data_volume_limit": 0},
        {"window_s": -1},
        {"bucket_s": 5 * HOUR},
        {"max_imsis": 10, "max_imsis_per_partner": 20},
        {"call_seconds_limit": True},
    ],
)
def test_bad_configs_are_refused(changes: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "data_volume_limit": 1,
        "call_seconds_limit": 1,
        "imsi_spend_cap": 1,
        "partner_spend_cap": 1,
    }
    fields.update(changes)
    with pytest.raises(FraudConfigError):
        FraudConfig(**fields)  # type: ignore[arg-type]


def test_an_imported_nrtrde_file_with_foreign_imsis_is_flagged_per_record() -> None:
    from payments.roaming import ImportPolicy, read_nrtrde

    from .vectors import read

    policy = ImportPolicy(hasher=HASHER, allowed_imsi_prefixes=frozenset({"20801"}))
    imported = read_nrtrde(read("nrt_2_1.ber"), policy)
    monitor = FraudMonitor(CONFIG)
    now = max(r.start_utc for r in imported.records)
    alerts = monitor.observe_file(imported, now=now)
    flagged = [a for a in alerts if a.kind is AlertKind.UNKNOWN_IMSI_RANGE]
    assert [a.evidence for a in flagged] == [(r.event_id,) for r in imported.records]
    # Within the allowed range: no range alerts.
    allowed = ImportPolicy(hasher=HASHER, allowed_imsi_prefixes=frozenset({"13371"}))
    quiet = FraudMonitor(CONFIG).observe_file(read_nrtrde(read("nrt_2_1.ber"), allowed), now=now)
    assert AlertKind.UNKNOWN_IMSI_RANGE not in kinds(quiet)
