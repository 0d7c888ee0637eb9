# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`kill -9` of palhm at random moments of a backup: nothing half-made is ever
taken for a complete copy, no complete copy is lost, no stage keeps running,
and the next run cleans up."""

from __future__ import annotations

import json
import os
import random
import signal
import time

from conftest import wait_for

ITERATIONS = int(os.environ.get("PALHM_KILL_ITERATIONS", "15"))


def crash_config(palhm):
    """Three groups in a chain, two objects each, every stage slow enough
    that a kill lands in any phase: start, streaming, group switch, commit."""
    slow = palhm.slow_producer
    objects = []
    for g, (chunks, delay) in enumerate(((6, 0.03), (8, 0.02), (5, 0.04))):
        objects.append({"path": "g%d-a.gz" % g, "group": "g%d" % g,
                        "pipeline": [slow(chunks, delay, 65536), palhm.stage("gzip", "-1")]})
        objects.append({"path": "g%d/b.zst" % g, "group": "g%d" % g,
                        "pipeline": [slow(chunks, delay, 65536), palhm.stage("cat"), palhm.stage("zstd", "-q", "-1")]})
    palhm.write_config({"nb-workers": 2, "tasks": [{
        "id": "backup", "type": "backup", "backend": "localfs", "backend-param": {"root": str(palhm.root)},
        "object-groups": [{"id": "g0"}, {"id": "g1", "depends": ["g0"]}, {"id": "g2", "depends": ["g1"]}],
        "objects": objects}]})


def check_copies(palhm, verified):
    """Every copy `list` calls complete really is: it verifies against its manifest."""
    copies = palhm.copies()
    for c in copies:
        on_disk = palhm.root / c["prefix"]
        if c["complete"]:
            assert on_disk.is_dir(), c
            assert (on_disk / ".palhm-manifest.json").is_file(), c
            assert not c["prefix"].endswith(".palhm-partial")
            assert c["objects"] == 6
            if c["prefix"] not in verified:
                res = palhm("verify", "backup", c["prefix"])
                assert res.returncode == 0, res.stderr
                verified.add(c["prefix"])
        else:
            assert c["state"] == "incomplete", c
            assert not (on_disk / ".palhm-manifest.json").exists()
    return copies


def test_kill_9_at_random_moments_never_loses_or_fakes_a_complete_copy(palhm):
    crash_config(palhm)
    seed = int(os.environ.get("PALHM_KILL_SEED", str(int(time.time()))))
    rnd = random.Random(seed)
    # One undisturbed run tells how long a backup takes.
    t0 = time.monotonic()
    res = palhm("run", "backup")
    full = time.monotonic() - t0
    assert res.returncode == 0, res.stderr
    verified = set()
    complete = {c["prefix"] for c in check_copies(palhm, verified) if c["complete"]}
    assert len(complete) == 1
    kills = 0
    for i in range(ITERATIONS):
        proc = palhm.start("run", "backup")
        delay = rnd.uniform(0.05, full * 1.1)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
        context = "seed %d, iteration %d, kill after %.3fs (rc %s)" % (seed, i, delay, proc.returncode)
        # The stages die with palhm (they were exec'ed directly by it).
        assert wait_for(lambda: palhm.children() == [], timeout=5), context
        copies = check_copies(palhm, verified)
        now_complete = {c["prefix"] for c in copies if c["complete"]}
        assert complete <= now_complete, "a complete copy was lost: " + context
        complete = now_complete
        assert len([c for c in copies if not c["complete"]]) <= 1, context
    assert kills >= ITERATIONS // 2, "too few runs were actually killed (%d); seed %d" % (kills, seed)

    # The next run removes the leftovers and keeps every complete copy.
    leftovers = [c["prefix"] for c in palhm.copies() if not c["complete"]]
    res = palhm("run", "backup")
    assert res.returncode == 0, res.stderr
    for prefix in leftovers:
        assert "removed incomplete copy %s" % prefix in res.stderr
    copies = check_copies(palhm, verified)
    assert all(c["complete"] for c in copies)
    assert complete < {c["prefix"] for c in copies}
    assert not [n for n in palhm.root_entries() if ".palhm-" in n]


def test_kill_9_during_rotation_leaves_no_copy_that_looks_complete_but_is_not(palhm):
    # Rotation renames a copy to .palhm-deleting before deleting it: a crash
    # in between must leave a leftover, never a complete copy with holes.
    crash_config(palhm)
    palhm.root.mkdir()
    doomed = palhm.root / "2000-01-01T00:00:00+00:00.palhm-deleting"
    doomed.mkdir()
    (doomed / "g0-a.gz").write_bytes(b"partial")
    (doomed / ".palhm-manifest.json").write_text(json.dumps({"objects": []}))
    states = {c["prefix"]: c["state"] for c in palhm.copies()}
    assert states == {"2000-01-01T00:00:00+00:00": "incomplete"}
    res = palhm("run", "backup")
    assert res.returncode == 0, res.stderr
    assert not doomed.exists()
