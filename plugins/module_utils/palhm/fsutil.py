# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""palhm's own directories (locks, state) and the files it keeps in them.

Invariants:
- A directory palhm creates for itself is created 0700. One it uses (made by
  palhm or anyone else) belongs to the user palhm runs as and is not group-
  or world-writable; otherwise another user could plant files in it (a
  symlink named like a lock file, a forged boot record), and palhm refuses it.
- Files in these directories are opened without following a symlink
  (O_NOFOLLOW) and must be regular files with one link: a planted symlink or
  hard link never makes palhm truncate or write another file.
- Every failure is a DirectoryError: one line naming the directory or file
  and what is wrong with it, exit code 6; never a traceback.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time

from .errors import DirectoryError

PRIVATE_MODE = 0o700


def reason(e):
    """A short reason for OSError `e` (no errno number, no path twice)."""
    reasons = {errno.EACCES: "permission denied", errno.EPERM: "permission denied",
               errno.EROFS: "read-only file system", errno.ENOTDIR: "a component of the path is not a directory",
               errno.ENOSPC: "no space left on device", errno.ELOOP: "too many symbolic links",
               errno.EEXIST: "exists and is not a directory"}
    return reasons.get(getattr(e, "errno", None)) or getattr(e, "strerror", None) or str(e)


def check_dir(path, what, st=None, follow=True):
    """Refuse `path` unless it is a directory owned by this user and not
    writable by group or others. `follow`: a symlink to such a directory is
    accepted (else it is refused). Returns its stat result."""
    if st is None:
        try:
            st = os.stat(path) if follow else os.lstat(path)
        except OSError as e:
            raise DirectoryError("%s %s is unusable: %s" % (what, path, reason(e))) from None
    if stat.S_ISLNK(st.st_mode):
        raise DirectoryError("%s %s is a symbolic link; refusing it (remove it, palhm makes its own)"
                             % (what, path))
    if not stat.S_ISDIR(st.st_mode):
        raise DirectoryError("%s %s is unusable: not a directory" % (what, path))
    uid = os.geteuid()
    if st.st_uid != uid:
        raise DirectoryError("%s %s is owned by uid %d, not by this user (uid %d); refusing it: another user "
                             "could plant files in it" % (what, path, st.st_uid, uid))
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise DirectoryError("%s %s is writable by group or others (mode %04o); refusing it (chmod go-w %s)"
                             % (what, path, stat.S_IMODE(st.st_mode), path))
    return st


def private_dir(path, what, create=True, follow=True):
    """Make sure `path` is a directory only this user may write (see
    check_dir), creating it 0700 (its parents as needed) when missing and
    `create`. Returns True when it exists (False: missing, not created)."""
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except FileNotFoundError:
        if not create:
            return False
        parent = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(parent, exist_ok=True)
            os.mkdir(path, PRIVATE_MODE)
        except FileExistsError:
            pass  # made by a concurrent run: checked below
        except OSError as e:
            raise DirectoryError("%s %s cannot be created: %s" % (what, path, reason(e))) from None
        st = None
    except OSError as e:
        raise DirectoryError("%s %s is unusable: %s" % (what, path, reason(e))) from None
    check_dir(path, what, st, follow=follow)
    return True


def open_private_file(path, what, flags, mode=0o600):
    """os.open() of a file in one of palhm's directories: never through a
    symlink, only a regular file with a single link. -> fd."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise DirectoryError("%s %s is a symbolic link; refusing to follow it (remove it)"
                                 % (what, path)) from None
        raise DirectoryError("%s %s cannot be opened: %s" % (what, path, reason(e))) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DirectoryError("%s %s is not a regular file; refusing it (remove it)" % (what, path))
        if st.st_nlink != 1:
            raise DirectoryError("%s %s has %d hard links; refusing it (remove it)" % (what, path, st.st_nlink))
        # O_NONBLOCK was only for the open (a planted FIFO must not hang it).
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def try_flock(fd):
    """An exclusive flock on `fd` without waiting; False when another process
    holds it (other errors are raised)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        return False
    return True


class WaitedLock:
    """An exclusive flock on the file descriptor `open_fd()` returns, waited
    for at most `wait` seconds (polling every `step`), then the OSError
    (EAGAIN) of a held lock. The descriptor is closed on exit and on failure."""

    def __init__(self, open_fd, wait, step=0.02):
        self.open_fd = open_fd
        self.wait = wait
        self.step = step
        self.fd = None

    def __enter__(self):
        fd = self.open_fd()
        deadline = time.monotonic() + self.wait
        try:
            while not try_flock(fd):
                if time.monotonic() > deadline:
                    raise OSError(errno.EAGAIN, "lock still held after %g s" % self.wait)
                time.sleep(self.step)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
