# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which copies rotation removes.

Only complete and legacy copies are considered (incomplete ones are leftovers,
removed separately; corrupt ones are kept and never counted). The copy just made is never removed. When calendar rules
(keep-*) are set, a copy survives if any of them keeps it; the original's
nb-copy-limit and root-size-limit then cap what survives, oldest first.
"""

from __future__ import annotations

import datetime

from .backends.base import COMPLETE, LEGACY, prefix_time

_PERIODS = (
    ("keep_daily", lambda t: (t.year, t.month, t.day)),
    ("keep_weekly", lambda t: tuple(t.isocalendar()[:2])),
    ("keep_monthly", lambda t: (t.year, t.month)),
    ("keep_yearly", lambda t: (t.year,)),
)


def calendar_kept(copies, policy, now):
    """Prefixes kept by the calendar rules (copies: oldest first)."""
    newest_first = list(reversed(copies))
    kept = set(c.prefix for c in newest_first[:policy.keep_last])
    for attr, bucket in _PERIODS:
        limit = getattr(policy, attr)
        if not limit:
            continue
        seen = []
        for c in newest_first:
            t = prefix_time(c.prefix)
            if t is None:
                continue
            key = bucket(t)
            if key in seen:
                continue
            seen.append(key)
            kept.add(c.prefix)
            if len(seen) >= limit:
                break
    if policy.keep_within:
        horizon = now - datetime.timedelta(seconds=policy.keep_within)
        for c in copies:
            t = prefix_time(c.prefix)
            if t is not None and t >= horizon:
                kept.add(c.prefix)
    # A copy whose prefix is not a time cannot be judged by the calendar: keep it.
    kept.update(c.prefix for c in copies if prefix_time(c.prefix) is None)
    return kept


def expired(copies, policy, protect, now=None):
    """The copies to remove, oldest first. `protect`: the prefix just made."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    pool = [c for c in copies if c.state in (COMPLETE, LEGACY)]
    pool.sort(key=lambda c: c.prefix)
    remove = []
    if policy.has_calendar():
        kept = calendar_kept(pool, policy, now)
        kept.add(protect)
        remove = [c for c in pool if c.prefix not in kept]
        pool = [c for c in pool if c.prefix in kept]
    # The original's limits, applied oldest first; the new copy always stays.
    total = sum(c.size for c in pool)
    count = len(pool)
    for c in list(pool):
        if count <= policy.nb_copy_limit and total <= policy.root_size_limit:
            break
        if c.prefix == protect:
            continue
        remove.append(c)
        count -= 1
        total -= c.size
    remove.sort(key=lambda c: c.prefix)
    return remove
