# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What is stored is exactly the stream, and only a stream every stage
finished well: `palhm run` and `palhm verify` driven from outside with
stages that misbehave the way real programs do (killed by a signal, seeking
on their stdout, reopening /dev/stdout, leaving a background child behind,
a full disk), and cancels that must stop the whole pipeline at once.

Whatever a stage does, no copy is listed complete unless it verifies and
holds every byte the pipeline produced, in order."""

from __future__ import annotations


def backup_config(palhm, objects, root=None, **bp):
    params = {"root": str(root or palhm.root)}
    params.update(bp)
    return palhm.write_config({"tasks": [{"id": "backup", "type": "backup", "backend": "localfs",
                                          "backend-param": params, "objects": objects}]})


def complete_copies(palhm):
    return [c for c in palhm.copies() if c["complete"]]


def assert_nothing_false_complete(palhm):
    """Every copy listed complete verifies (the class every test here checks)."""
    for c in complete_copies(palhm):
        v = palhm("verify", "backup", c["prefix"])
        assert v.returncode == 0, "copy %s is listed complete but does not verify: %s" % (c["prefix"], v.stderr)


# --------------------------------------------------------------------------
# item 1: a stage killed by a signal is a failure whatever its ec
# --------------------------------------------------------------------------

def test_a_tar_killed_by_sigkill_is_a_failure_even_with_ec_below_2(palhm):
    # The stock tar Exec accepts "<2" (files changed while read). A tar the
    # OOM killer stops has written half an archive: it must not be a copy.
    tar = palhm.stage("/bin/sh", "-c", "echo half-an-archive; kill -KILL $$", ec="<2")
    backup_config(palhm, [{"path": "src.tar", "pipeline": [tar]}])
    res = palhm("run", "backup")
    assert res.returncode == 1, res.stderr
    assert "killed by SIGKILL" in res.stderr
    assert complete_copies(palhm) == [] and palhm.partials() == []


def test_an_ec_accepts_its_exit_codes_but_never_a_death_by_signal(palhm):
    ok = palhm.stage("/bin/sh", "-c", "echo data; exit 1", ec="<2")
    anything = palhm.stage("/bin/sh", "-c", "echo more; kill -TERM $$", ec="<=1")
    backup_config(palhm, [{"path": "a", "pipeline": [ok]}, {"path": "b", "pipeline": [anything]}])
    res = palhm("run", "backup")
    assert res.returncode == 1, res.stderr
    assert "object b" in res.stderr and "killed by SIGTERM" in res.stderr
    assert complete_copies(palhm) == []


def test_exit_codes_outside_0_to_255_are_config_errors(palhm):
    backup_config(palhm, [{"path": "a", "pipeline": [palhm.stage("true", ec="<=-1")]}])
    res = palhm("run", "backup")
    assert res.returncode == 2
    assert "tasks[0].objects[0].pipeline[0].ec" in res.stderr and "0 to 255" in res.stderr
