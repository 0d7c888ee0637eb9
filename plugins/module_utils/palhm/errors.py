# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine's error hierarchy.

Every error the engine raises on purpose is a PalhmError. Front doors map them:
modules to ``fail_json(msg=str(err))``, the CLI to one line on stderr and
``err.exit_code``.
"""

from __future__ import annotations

# Documented exit codes of the `palhm` command.
EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_CONFIG = 2
EXIT_LOCKED = 3
EXIT_CANCELLED = 4
EXIT_VERIFY = 5
EXIT_DIRECTORY = 6
EXIT_NOT_OK = 7  # `palhm status`: some task is not ok (stale, failing, never-run, no-copy)


class PalhmError(Exception):
    """Base of every error the engine raises on purpose."""

    exit_code = EXIT_TASK_FAILED


def exit_code_of(exc):
    """The documented exit code of the `palhm` command for `exc`: its own for
    a PalhmError, EXIT_CANCELLED for an interrupt, else EXIT_TASK_FAILED."""
    if isinstance(exc, PalhmError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_CANCELLED
    return EXIT_TASK_FAILED


class ConfigError(PalhmError):
    """The configuration (or module arguments) is wrong; nothing ran."""

    exit_code = EXIT_CONFIG

    def __init__(self, path, msg):
        self.path = (path or "").strip().rstrip(":") or "(top)"
        self.msg = msg
        super().__init__("%s: %s" % (self.path, msg))


class UsageError(PalhmError):
    """The command line is wrong."""

    exit_code = EXIT_CONFIG


class MissingLibraryError(PalhmError):
    """An optional library (boto3, dnspython) is needed but not installed."""

    exit_code = EXIT_CONFIG

    def __init__(self, library, feature):
        self.library = library
        super().__init__("%s requires the Python library %r, which is not installed on this host"
                         % (feature, library))


class LockHeldError(PalhmError):
    """Another run of the same task holds the lock."""

    exit_code = EXIT_LOCKED


class TaskFailed(PalhmError):
    """A task ran and failed; whatever it was making was rolled back."""

    exit_code = EXIT_TASK_FAILED


class StageError(TaskFailed):
    """A pipeline stage exited with a code outside its accepted range."""

    def __init__(self, what, argv, returncode, stderr_tail=""):
        from . import redact
        # What is kept and shown is secret-free (redact.py): the message
        # reaches cron mail, module results and the failure ping.
        self.what = what
        self.argv = redact.argv(argv)
        self.returncode = returncode
        self.stderr_tail = redact.text(stderr_tail)
        stderr_tail = self.stderr_tail
        msg = "%s: %s exited with code %s" % (what, _fmt_argv(self.argv), _fmt_rc(returncode))
        if stderr_tail:
            msg += "; stderr: " + stderr_tail.strip().replace("\n", " | ")
        super().__init__(msg)


class StartError(StageError):
    """A stage's program could not be started (not found, not executable)."""

    def __init__(self, what, argv, error):
        import errno
        reasons = {errno.ENOENT: "not found", errno.ENOTDIR: "not found", errno.EACCES: "permission denied",
                   errno.ENOEXEC: "not an executable", errno.EISDIR: "is a directory"}
        reason = reasons.get(getattr(error, "errno", None)) or getattr(error, "strerror", None) or str(error)
        super().__init__(what, argv, None)
        # The message StageError made ("exited with code None") is replaced.
        self.args = ("%s: cannot start %s: %s" % (what, argv[0] if argv else "?", reason),)


class BackendError(TaskFailed):
    """The storage backend failed (I/O error, no space, S3 error)."""


class DirectoryError(TaskFailed):
    """A directory palhm keeps its own files in (locks, state), or a file in
    it, is unusable (missing parent, read-only, no permission) or unsafe
    (owned by another user, group/world-writable, a planted symlink)."""

    exit_code = EXIT_DIRECTORY


class CancelledError(TaskFailed):
    """The run was cancelled by a signal; the copy was rolled back."""

    exit_code = EXIT_CANCELLED


class VerifyError(PalhmError):
    """A stored copy does not match its manifest."""

    exit_code = EXIT_VERIFY


def _fmt_argv(argv):
    return "[" + ", ".join(repr(a) for a in argv) + "]"


def _fmt_rc(rc):
    if rc is not None and rc < 0:
        import signal
        try:
            return "%d (killed by %s)" % (rc, signal.Signals(-rc).name)
        except ValueError:
            return str(rc)
    return str(rc)
