# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The localfs backend: copies are directories under ROOT (a local disk, NFS
or Samba mount).

A copy is made in ``ROOT/PREFIX.palhm-partial`` and renamed to ``ROOT/PREFIX``
after its manifest was written and everything was fsync'ed, so a crash at any
moment leaves either a ``.palhm-partial`` leftover or a complete copy. Copies
being removed are first renamed to ``.palhm-deleting``. The last stage of an
object's pipeline writes straight into the object's file; a thread hashes the
file right behind the writer, while the data is still in the page cache.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import threading

from .. import schema
from ..errors import BackendError, ConfigError
from .base import (COMMON_PARAMS, COMPLETE, INCOMPLETE, LEGACY, MANIFEST_NAME, Backend, Copy, ObjectInfo, Sink,
                   parse_retention)

PARTIAL = ".palhm-partial"
DELETING = ".palhm-deleting"
CHUNK = 1 << 20
MAX_BLOCK_SIZE = 1 << 30  # dd's bs= is a buffer in memory: more than 1 GiB is a typo


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FollowHasher(threading.Thread):
    """Hashes a file while another process appends to it."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.writer_done = threading.Event()
        self.hash = hashlib.sha256()
        self.size = 0
        self.error = None

    def run(self):
        try:
            while True:
                data = os.read(self.fd, CHUNK)
                if data:
                    self.hash.update(data)
                    self.size += len(data)
                elif self.writer_done.is_set():
                    data = os.read(self.fd, CHUNK)
                    if not data:
                        break
                    self.hash.update(data)
                    self.size += len(data)
                else:
                    self.writer_done.wait(0.005)
        except OSError as e:
            self.error = e
        finally:
            os.close(self.fd)

    def result(self):
        self.writer_done.set()
        self.join()
        if self.error is not None:
            raise BackendError("cannot read back for hashing: %s" % self.error)
        return self.size, self.hash.hexdigest()


class FileSink(Sink):
    def __init__(self, path, fmode):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        os.fchmod(self.fd, fmode)
        self.hasher = FollowHasher(path)
        self.hasher.start()

    def finish(self):
        try:
            size, digest = self.hasher.result()
            os.fsync(self.fd)
        except OSError as e:
            raise _backend_error("cannot write %s" % self.path, e) from None
        finally:
            self._close()
        return ObjectInfo(size, digest)

    def _close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def abort(self):
        self.hasher.writer_done.set()
        self._close()

    def no_space(self):
        try:
            st = os.fstatvfs(self.fd) if self.fd is not None else os.statvfs(os.path.dirname(self.path))
        except OSError:
            return False
        return st.f_bavail == 0 or st.f_favail == 0


def _backend_error(what, e):
    if getattr(e, "errno", None) == errno.ENOSPC:
        return BackendError("%s: no space left on device" % what)
    return BackendError("%s: %s" % (what, e))


def _du(path):
    """Bytes under `path`, never following symlinks."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


class LocalfsBackend(Backend):
    name = "localfs"

    def __init__(self, params, task_id):
        super().__init__(params, task_id)
        self.root = params["root"]
        self.dmode = params["dmode"]
        self.fmode = params["fmode"]
        self.partial = None

    def location(self, prefix=None):
        return os.path.join(self.root, prefix) if prefix else self.root

    def lock_key(self):
        return "localfs:" + os.path.realpath(self.root)

    # -- listing ---------------------------------------------------------
    def _entries(self):
        try:
            with os.scandir(self.root) as it:
                return sorted(((e.name, e) for e in it), key=lambda x: x[0])
        except FileNotFoundError:
            return []
        except OSError as e:
            raise _backend_error("cannot list backup root %s" % self.root, e) from None

    def list_copies(self, include_incomplete=True):
        copies = []
        for name, entry in self._entries():
            # Never follow a symlink out of ROOT: such entries are not copies.
            if not entry.is_dir(follow_symlinks=False):
                continue
            full = os.path.join(self.root, name)
            if name.endswith(PARTIAL) or name.endswith(DELETING):
                if include_incomplete:
                    base = name[:-len(PARTIAL)] if name.endswith(PARTIAL) else name[:-len(DELETING)]
                    copies.append(Copy(base, INCOMPLETE, _du(full), 0, None, full, {"dir": full}))
                continue
            manifest = self._load_manifest(full)
            if manifest is not None:
                size = sum(o.get("size", 0) for o in manifest.get("objects", []))
                copies.append(Copy(name, COMPLETE, size, len(manifest.get("objects", [])), manifest, full,
                                   {"dir": full}))
            else:
                nfiles = sum(len(files) for _dir, _subdirs, files in os.walk(full))
                copies.append(Copy(name, LEGACY, _du(full), nfiles, None, full, {"dir": full}))
        copies.sort(key=lambda c: c.prefix)
        return copies

    @staticmethod
    def _load_manifest(copy_dir):
        path = os.path.join(copy_dir, MANIFEST_NAME)
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                return None
            with open(path, "r", encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def read_manifest(self, prefix):
        return self._load_manifest(os.path.join(self.root, prefix))

    def cleanup_leftovers(self, copies):
        removed = []
        for c in copies:
            if c.state == INCOMPLETE and c.extra.get("dir") != self.partial:
                self._rmtree(c.extra["dir"])
                removed.append(c.prefix)
        return removed

    def _rmtree(self, path):
        # Only direct children of ROOT, never through a symlink.
        if os.path.dirname(os.path.abspath(path)) != os.path.abspath(self.root) or os.path.islink(path):
            raise BackendError("refusing to delete %s: not a copy directory inside %s" % (path, self.root))
        try:
            shutil.rmtree(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise _backend_error("cannot remove %s" % path, e) from None

    # -- making a copy ---------------------------------------------------
    def _mkdir(self, path):
        os.mkdir(path, 0o700)
        os.chmod(path, self.dmode)

    def begin(self, prefix):
        super().begin(prefix)
        try:
            if not os.path.isdir(self.root):
                os.makedirs(self.root, 0o700, exist_ok=True)
                os.chmod(self.root, self.dmode)
            self.partial = os.path.join(self.root, prefix + PARTIAL)
            self._mkdir(self.partial)
        except OSError as e:
            raise _backend_error("cannot create the copy in %s" % self.root, e) from None

    def open_sink(self, path, alloc_size=None):
        target = os.path.join(self.partial, path)
        try:
            parent = self.partial
            for part in path.split("/")[:-1]:
                parent = os.path.join(parent, part)
                try:
                    self._mkdir(parent)
                except FileExistsError:
                    # Another object of this copy made it at the same time.
                    if not os.path.isdir(parent) or os.path.islink(parent):
                        raise
            return FileSink(target, self.fmode)
        except OSError as e:
            raise _backend_error("cannot create %s" % target, e) from None

    def commit(self, manifest):
        final = os.path.join(self.root, self.prefix)
        tmp = os.path.join(self.partial, MANIFEST_NAME + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                os.fchmod(f.fileno(), self.fmode)
                json.dump(manifest, f, indent=1, sort_keys=True)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, os.path.join(self.partial, MANIFEST_NAME))
            for dirpath, _subdirs, _files in os.walk(self.partial):
                _fsync_dir(dirpath)
            if os.path.lexists(final):
                raise BackendError("%s already exists; not replacing it" % final)
            os.rename(self.partial, final)
            _fsync_dir(self.root)
        except OSError as e:
            raise _backend_error("cannot complete the copy %s" % final, e) from None
        self.partial = None

    def rollback(self):
        if self.partial is not None:
            try:
                self._rmtree(self.partial)
            finally:
                self.partial = None

    def remove_copy(self, copy):
        src = copy.extra["dir"]
        doomed = os.path.join(self.root, copy.prefix + DELETING)
        if copy.state != INCOMPLETE:
            # Rename first: a crash mid-delete leaves a leftover, never a
            # "complete" copy with objects missing.
            try:
                os.rename(src, doomed)
            except OSError as e:
                raise _backend_error("cannot remove copy %s" % src, e) from None
            src = doomed
        self._rmtree(src)

    def open_object(self, prefix, path):
        return open(os.path.join(self.root, prefix, path), "rb")


def parse_params(raw, path):
    schema.obj(raw, path, required=("root",), optional=COMMON_PARAMS + ("dmode", "fmode", "block-size"))
    root = schema.string(raw["root"], schema.join(path, "root"))
    if not os.path.isabs(root):
        raise ConfigError(schema.join(path, "root"), "must be an absolute path, got %s" % schema.show(root))
    params = {"root": os.path.normpath(root),
              "dmode": schema.file_mode(raw.get("dmode", "750"), schema.join(path, "dmode")),
              "fmode": schema.file_mode(raw.get("fmode", "640"), schema.join(path, "fmode")),
              "retention": parse_retention(raw, path)}
    if "block-size" in raw:
        # The original passed it to dd; the last stage now writes the file itself.
        params["block-size"] = schema.integer(raw["block-size"], schema.join(path, "block-size"), minimum=1,
                                              maximum=MAX_BLOCK_SIZE, allow_string=True)
    return params


def make(params, task_id):
    return LocalfsBackend(params, task_id)
