# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which copies rotation removes: the original's count and size limits,
calendar retention, and the guarantees around new and incomplete copies."""

from __future__ import annotations

import datetime

from ansible_collections.palhm.palhm.plugins.module_utils.palhm import retention
from ansible_collections.palhm.palhm.plugins.module_utils.palhm.backends.base import (
    COMPLETE, INCOMPLETE, LEGACY, Copy, Retention, parse_retention)

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 5, 20, 12, 0, 0, tzinfo=UTC)


def prefix(dt):
    return dt.replace(microsecond=0).isoformat()


def copy(when, size=100, state=COMPLETE):
    if isinstance(when, str):
        return Copy(when, state, size, 1)
    return Copy(prefix(when), state, size, 1)


def daily(n, end=NOW, size=100):
    """n complete copies, one per day, oldest first, the last at `end`."""
    return [copy(end - datetime.timedelta(days=n - 1 - i), size) for i in range(n)]


def removed(copies, policy, protect=None, now=NOW):
    protect = protect or copies[-1].prefix
    return [c.prefix for c in retention.expired(copies, policy, protect, now)]


def policy(**kw):
    return parse_retention({k.replace("_", "-"): v for k, v in kw.items()}, "backend-param")


def test_nb_copy_limit_removes_the_oldest_copies():
    copies = daily(6)
    assert removed(copies, policy(nb_copy_limit=3)) == [c.prefix for c in copies[:3]]


def test_no_limit_removes_nothing():
    assert removed(daily(10), Retention()) == []
    assert removed(daily(10), policy(nb_copy_limit="Infinity", root_size_limit="inf")) == []


def test_the_new_copy_survives_even_a_zero_or_negative_limit():
    copies = daily(4)
    for limit in (0, "-Infinity", -5):
        assert removed(copies, policy(nb_copy_limit=limit)) == [c.prefix for c in copies[:3]]


def test_root_size_limit_removes_oldest_until_the_total_fits():
    copies = [copy(NOW - datetime.timedelta(days=3 - i), size) for i, size in enumerate((400, 300, 200, 100))]
    # 1000 bytes in all; 350 allowed: drop 400 (600 left), drop 300 (300 left).
    assert removed(copies, policy(root_size_limit=350)) == [c.prefix for c in copies[:2]]


def test_a_new_copy_larger_than_the_size_limit_is_still_kept():
    copies = [copy(NOW - datetime.timedelta(days=1), 10), copy(NOW, 5000)]
    assert removed(copies, policy(root_size_limit=1000)) == [copies[0].prefix]


def test_size_limit_beyond_2_pow_53_is_compared_exactly():
    big = 2 ** 53
    copies = [copy(NOW - datetime.timedelta(days=1), big), copy(NOW, 1)]
    assert removed(copies, policy(root_size_limit=str(big + 1))) == []
    assert removed(copies, policy(root_size_limit=str(big))) == [copies[0].prefix]


def test_both_limits_must_hold():
    copies = daily(5, size=100)
    assert removed(copies, policy(nb_copy_limit=4, root_size_limit=250)) == [c.prefix for c in copies[:3]]


def test_incomplete_copies_are_never_counted_nor_removed_by_rotation():
    copies = daily(3)
    leftovers = [copy(NOW - datetime.timedelta(days=10, hours=i), 10 ** 9, INCOMPLETE) for i in range(3)]
    mixed = sorted(copies + leftovers, key=lambda c: c.prefix)
    out = removed(mixed, policy(nb_copy_limit=3, root_size_limit=1000), protect=copies[-1].prefix)
    assert out == []


def test_rotation_never_removes_a_complete_copy_to_keep_an_incomplete_one():
    complete = daily(3)
    newest_leftover = copy(NOW + datetime.timedelta(hours=1), 1, INCOMPLETE)
    out = removed(complete + [newest_leftover], policy(nb_copy_limit=3), protect=complete[-1].prefix)
    assert out == []


def test_legacy_copies_of_the_original_count_and_rotate():
    legacy = [copy(NOW - datetime.timedelta(days=5 - i), 100, LEGACY) for i in range(2)]
    copies = legacy + daily(2)
    assert removed(copies, policy(nb_copy_limit=2)) == [c.prefix for c in legacy]


def test_keep_last_keeps_the_newest_copies():
    copies = daily(6)
    assert removed(copies, policy(keep_last=2)) == [c.prefix for c in copies[:4]]


def test_keep_daily_keeps_the_newest_copy_of_each_recent_day():
    start = datetime.datetime(2026, 5, 17, 1, 0, tzinfo=UTC)
    copies = [copy(start + datetime.timedelta(hours=8 * i)) for i in range(12)]  # 3 per day, 4 days
    out = removed(copies, policy(keep_daily=2))
    kept = [c.prefix for c in copies if c.prefix not in out]
    # Newest of May 20 (the new copy) and newest of May 19.
    assert kept == [prefix(datetime.datetime(2026, 5, 19, 17, tzinfo=UTC)),
                    prefix(datetime.datetime(2026, 5, 20, 17, tzinfo=UTC))]


def test_keep_weekly_keeps_one_copy_per_iso_week():
    copies = daily(21)  # three weeks and a bit
    out = removed(copies, policy(keep_weekly=2))
    kept = [c for c in copies if c.prefix not in out]
    weeks = [datetime.datetime.fromisoformat(c.prefix).isocalendar()[1] for c in kept]
    assert len(kept) == 2 and len(set(weeks)) == 2
    assert kept[-1].prefix == copies[-1].prefix


def test_keep_monthly_and_yearly_keep_the_newest_of_each_period():
    copies = [copy(datetime.datetime(y, m, 1, tzinfo=UTC)) for y in (2024, 2025, 2026) for m in (1, 6, 11)
              if datetime.datetime(y, m, 1, tzinfo=UTC) <= NOW]
    out = removed(copies, policy(keep_monthly=2))
    assert [c.prefix for c in copies if c.prefix not in out] == [prefix(datetime.datetime(2025, 11, 1, tzinfo=UTC)),
                                                                 prefix(datetime.datetime(2026, 1, 1, tzinfo=UTC))]
    out = removed(copies, policy(keep_yearly=3))
    assert [c.prefix for c in copies if c.prefix not in out] == [
        prefix(datetime.datetime(2024, 11, 1, tzinfo=UTC)), prefix(datetime.datetime(2025, 11, 1, tzinfo=UTC)),
        prefix(datetime.datetime(2026, 1, 1, tzinfo=UTC))]


def test_keep_within_keeps_everything_younger_than_the_duration():
    copies = [copy(NOW - datetime.timedelta(hours=h)) for h in (100, 60, 47, 10, 0)]
    out = removed(copies, policy(keep_within="2d"))
    assert out == [copies[0].prefix, copies[1].prefix]


def test_a_copy_survives_if_any_calendar_rule_keeps_it():
    copies = daily(40)
    only_daily = set(removed(copies, policy(keep_daily=3)))
    only_monthly = set(removed(copies, policy(keep_monthly=2)))
    both = set(removed(copies, policy(keep_daily=3, keep_monthly=2)))
    assert both == only_daily & only_monthly
    kept = [c.prefix for c in copies if c.prefix not in both]
    assert len(kept) == 4  # the last 3 days + the newest copy of the month before


def test_count_limit_caps_what_calendar_rules_keep_but_not_the_new_copy():
    copies = daily(10)
    out = removed(copies, policy(keep_daily=7, nb_copy_limit=3))
    assert [c.prefix for c in copies if c.prefix not in out] == [c.prefix for c in copies[-3:]]


def test_the_copy_just_made_survives_even_when_it_is_not_the_newest():
    # Clock went back: the new copy sorts before an existing one.
    copies = daily(4)
    protect = copies[1].prefix
    out = removed(copies, policy(nb_copy_limit=1), protect=protect)
    assert protect not in out
    assert set(out) == {copies[0].prefix, copies[2].prefix, copies[3].prefix}
    out = removed(copies, policy(keep_last=1), protect=protect)
    assert protect not in out


def test_calendar_rules_keep_copies_whose_prefix_is_not_a_time():
    copies = [copy("manual-before-upgrade")] + daily(3)
    out = removed(sorted(copies, key=lambda c: c.prefix), policy(keep_last=1), protect=copies[-1].prefix)
    assert "manual-before-upgrade" not in out
    assert len(out) == 2
