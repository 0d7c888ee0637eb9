# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planted defects: each is a small text substitution applied to a *copy* of
the engine (plugins/module_utils/palhm copied to a temp dir). The repo's
engine is never touched. `run.sh --planted` runs each scenario against its
defective engine and expects the scenario to fail: that is the proof the
scenario can see the kind of bug it is meant to catch."""

from __future__ import annotations

import shutil
from pathlib import Path

INT_OPTS_WHY = "mailx int-opts passwords are neither known secrets nor recognised as NAME=VALUE or URL passwords"
SIGNAL_WHY = "ec \"<2\" is read as (-inf, 1]: a stage killed by SIGKILL (-9) is accepted"
STAGE_WRITES_WHY = ("the last stage writes the object file itself and palhm hashes it when the stage exits "
                    "(the old sink)")
EMPTY_TASK_WHY = "a backup task without objects is accepted (an empty copy rotates real ones away)"

# name -> (scenario it must break, why, [(file, old, new)])
DEFECTS = {
    "env-value-printed": ("secrets-and-dirs", "a stage's forwarded stderr shows the config's secrets (env values)", [
        ("pipeline.py", "self.forward.write(redact.values(data.decode(\"utf-8\", errors=\"surrogateescape\"))",
         "self.forward.write((data.decode(\"utf-8\", errors=\"surrogateescape\"))"),
    ]),
    "int-opts-password-printed": ("secrets-and-dirs", INT_OPTS_WHY, [
        ("bootreport.py", "    return found + redact.secrets_in_argv(p.get(\"int-opts\", []))\n", "    return found\n"),
        ("redact.py", "    value = _ASSIGN.sub(_assign, value)\n", ""),
        ("redact.py", "    value = _USERINFO.sub(", "    value = (lambda *a: a[1])("),
    ]),
    "symlinked-lock-followed": ("secrets-and-dirs", "lock files are opened through symlinks", [
        ("fsutil.py", "flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK", "flags | os.O_CLOEXEC | os.O_NONBLOCK"),
    ]),
    "lock-dir-mode-unchecked": ("secrets-and-dirs", "a group/world-writable lock directory is accepted", [
        ("fsutil.py", "    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):\n", "    if False:\n"),
    ]),
    "empty-task-accepted": ("secrets-and-dirs", EMPTY_TASK_WHY, [
        ("backup.py", "    if not objects:\n", "    if False:\n"),
    ]),
    "huge-duration-accepted": ("secrets-and-dirs", "keep-within has no upper bound", [
        ("backends/base.py", "    if seconds > maximum:\n", "    if False:\n"),
    ]),
    "no-partial-dir": ("kills-localfs",
                       "localfs writes the copy straight into ROOT/PREFIX (no .palhm-partial, no rename)", [
                           ("backends/localfs.py", "self.partial = os.path.join(self.root, prefix + PARTIAL)",
                            "self.partial = os.path.join(self.root, prefix)"),
                           ("backends/localfs.py", "            if os.path.lexists(final):\n",
                            "            if False:\n"),
                           ("backends/localfs.py", "            os.rename(self.partial, final)\n",
                            "            pass\n"),
                       ]),
    # Stages writing into the pipe of a dead palhm die of SIGPIPE anyway: only
    # children that do not write (`sleep 30 | cat`) show this, in hostile-stages.
    "no-pdeathsig": ("hostile-stages", "stages and their children outlive palhm (no PR_SET_PDEATHSIG, no guard process)", [
        ("pipeline.py", "            _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)\n",
         "            pass\n"),
        ("pipeline.py", "            _Guard.register(pgid)\n", "            pass\n"),
    ]),
    "s3-no-marker": ("kills-s3", "aws-s3 begin() does not write the in-progress marker", [
        ("backends/aws.py", "            self._sinks = []\n        self._put_marker(prefix)\n",
         "            self._sinks = []\n"),
    ]),
    "no-rollback": ("cancels-localfs", "a failed or cancelled run does not roll its copy back", [
        ("backup.py", "                    backend.rollback()\n", "                    pass\n"),
    ]),
    "no-rollback-s3": ("cancels-s3", "the same defect, on the aws-s3 backend", [
        ("backup.py", "                    backend.rollback()\n", "                    pass\n"),
    ]),
    "keep-partial-on-enospc": ("fulldisk", "localfs rollback keeps the partial directory", [
        ("backends/localfs.py", "                self._rmtree(self.partial)\n", "                pass\n"),
    ]),
    "s3-drop-failed-part": ("flaky-s3", "a part whose upload failed is silently left out of the object", [
        ("backends/aws.py",
         "                    if self.error is None:\n                        self.error = e if isinstance(e, BackendError)",
         "                    if False:\n                        self.error = e if isinstance(e, BackendError)"),
    ]),
    "s3-no-deadlines": ("stalled-s3", "the S3 client ignores the configured deadlines (botocore's 60 s waits)", [
        ("backends/aws.py", '"connect_timeout": connect, "read_timeout": read}',
         '"connect_timeout": 60, "read_timeout": 60}'),
    ]),
    "no-lock": ("concurrency", "the per-host locks are never taken", [
        ("runtime.py", "        if not fsutil.try_flock(fd):\n            raise LockHeldError(",
         "        if False:\n            raise LockHeldError("),
    ]),
    "obj-check-removed": ("bad-input", "schema.obj() no longer checks that a value is an object", [
        ("schema.py", "    if not isinstance(value, dict):\n        raise ConfigError(path, \"expected an object, got",
         "    if False:\n        raise ConfigError(path, \"expected an object, got"),
    ]),
    "obj-check-removed-m": ("module-args", "the same defect, seen through palhm_backup's module arguments", [
        ("schema.py", "    if not isinstance(value, dict):\n        raise ConfigError(path, \"expected an object, got",
         "    if False:\n        raise ConfigError(path, \"expected an object, got"),
    ]),
    "allow-dotdot": ("safety", "object paths may contain '..'", [
        ("backends/base.py", "        if part == \"..\":\n", "        if False:\n"),
    ]),
    "fmode-ignored": ("safety", "localfs objects keep the creation mode (umask) instead of fmode", [
        ("backends/localfs.py", "        os.fchmod(self._out, fmode)\n", "        pass\n"),
    ]),
    "secret-in-config": ("safety", "`palhm config` shows the S3 secret key", [
        ("backends/aws.py", "        out[\"credentials\"] = \"backend-param (hidden)\"",
         "        out[\"credentials\"] = params[\"credentials\"].secret_key"),
        # and the key is not among the config's known secrets (redact.py would hide it)
        ("config.py", "            found += [creds.secret_key, creds.session_token]\n", "            pass\n"),
    ]),
    "dup-keys-allowed": ("migration", "a key repeated in one JSON object silently wins (the last one)", [
        ("jsonc.py", "    doc = json.loads(text, object_pairs_hook=_pairs)\n", "    doc = json.loads(text)\n"),
    ]),
    "include-any-file": ("migration", "an include is read whatever it is (FIFO, device, directory)", [
        ("config.py", "        if not stat.S_ISREG(st.st_mode):\n", "        if False:\n"),
    ]),
    "included-scalars-lose": ("migration", "the including file's vl and nb-workers win over the included file's", [
        ("config.py", "    if not args_win:\n        _take_scalars(raw, doc, where)\n",
         "    if False:\n        _take_scalars(raw, doc, where)\n"),
        ("config.py", "    if args_win:\n        _take_scalars(raw, doc, where)\n",
         "    if True:\n        _take_scalars(raw, doc, where)\n"),
    ]),
    "include-from-link-dir": ("migration", "an included file's includes resolve from the symlink's directory", [
        ("config.py", "    base = os.path.dirname(os.path.abspath(path) if via is None else real)\n",
         "    base = os.path.dirname(os.path.abspath(path))\n"),
    ]),
    "history-unbounded": ("history", "the run history grows without bound (no last-50 cut)", [
        ("history.py", '"runs": current["runs"][-MAX_RUNS:],', '"runs": current["runs"],'),
    ]),
    "failure-not-recorded": ("history", "a failed run is not recorded in the history", [
        ("runtime.py", "                    history.record(self, task, None, e, started, time.time())\n",
         "                    pass\n"),
    ]),
    "died-run-ignored": ("history", "status ignores the start mark a killed run left behind", [
        ("status.py", '    if hist["unfinished"] is not None and not running:\n', "    if False:\n"),
    ]),
    "future-copy-counts": ("history", "status counts a complete copy dated in the future", [
        ("status.py", "if t is not None and t.timestamp() > now + CLOCK_SLACK:", "if False:"),
    ]),
    "any-dir-is-legacy": ("ownership", "every directory of a localfs root without a manifest is a legacy copy "
                          "(lost+found, notes, another task's nested root are rotated away)", [
                              ("backends/localfs.py", "                if is_original_prefix(name):\n",
                               "                if True:\n"),
                          ]),
    "signal-death-accepted": ("hostile-stages", SIGNAL_WHY, [
        ("execs.py", "returncode is not None and returncode >= 0 and self.low <= returncode",
         "returncode is not None and self.low <= returncode"),
        ("execs.py", "{\"<\": (EC_MIN, n - 1), \"<=\": (EC_MIN, n),", "{\"<\": (-EC_MAX, n - 1), \"<=\": (-EC_MAX, n),"),
    ]),
    "stage-writes-object": ("hostile-stages", STAGE_WRITES_WHY, [
        ("backup.py", "pipe = Pipeline(obj.stages, label, STDOUT_PIPE, rt)",
         "pipe = Pipeline(obj.stages, label, getattr(sink, \"_out\", None) or STDOUT_PIPE, rt)"),
        ("pipeline.py", "        fd = self.out_fd\n        os.set_blocking(fd, False)",
         "        fd = self.out_fd\n        if fd is None:\n            return\n        os.set_blocking(fd, False)"),
        ("backends/localfs.py", "        return ObjectInfo(self.size, self.hash.hexdigest())\n",
         "        return ObjectInfo(os.path.getsize(self.path), __import__(\"hashlib\").sha256(\n"
         "            open(self.path, \"rb\").read()).hexdigest())\n"),
    ]),
    "late-data-dropped": ("hostile-stages", "the stream is cut when the last stage exits (a child's late output is lost)", [
        ("pipeline.py", "            except BlockingIOError:\n                self.stop_on_failure()\n",
         "            except BlockingIOError:\n                if self.procs[-1].poll() is not None:\n"
         "                    return\n                self.stop_on_failure()\n"),
    ]),
    "write-error-swallowed": ("hostile-stages", "localfs ignores its own write errors (ENOSPC)", [
        ("backends/localfs.py",
         "            except OSError as e:\n                raise _backend_error(\"cannot write %s\" % self.path, e) from None\n",
         "            except OSError:\n                return\n"),
    ]),
    "no-process-group": ("hostile-stages", "stages stay in palhm's process group: only direct children are signalled", [
        ("pipeline.py", "        try:\n            os.setpgid(0, pgid)\n", "        try:\n            pass\n"),
    ]),
    "no-guard": ("hostile-stages", "no guard process: a kill -9 of palhm orphans the stages' children", [
        ("pipeline.py", "            _Guard.register(pgid)\n", "            pass\n"),
    ]),
    "failure-waits": ("hostile-stages", "a failing stage does not stop the others (palhm waits for them all)", [
        ("pipeline.py", "            if rc is not None and not exe.ec.accepts(rc) and not is_sigpipe(rc):\n",
         "            if False:\n"),
    ]),
    "foreign-marks-expire-at-once": ("shared-root", "another host's in-progress copy is taken as dead at once "
                                     "(no stale-age): one host's cleanup deletes another's work", [
                                         ("backends/owner.py", "    if age > stale_age:\n", "    if True:\n"),
                                     ]),
    "comment-keys-refused": ("migration", "keys starting with _, # or // are unknown-key errors", [
        ("schema.py", "        if key not in allowed and not is_comment_key(key):\n",
         "        if key not in allowed:\n"),
    ]),
}


def make_engine(name, dest, src):
    """Copy the engine package from `src` (plugins/module_utils) into `dest`
    and plant defect `name`; -> the directory to put on PYTHONPATH."""
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(Path(src) / "palhm", dest / "palhm", ignore=shutil.ignore_patterns("__pycache__"))
    for rel, old, new in DEFECTS[name][2]:
        f = dest / "palhm" / rel
        text = f.read_text(encoding="utf-8")
        if text.count(old) != 1:
            raise RuntimeError("defect %s: expected exactly one %r in %s, found %d (the engine changed; "
                               "update tests/reliability/defects.py)" % (name, old, rel, text.count(old)))
        f.write_text(text.replace(old, new), encoding="utf-8")
    return dest
