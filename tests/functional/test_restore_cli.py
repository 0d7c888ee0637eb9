# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`palhm restore` through the real CLI: what was backed up comes back byte
for byte, straight, into a file or through `zstd -d | tar -x`; a corrupt,
missing or incomplete object fails with the object named.

Every story runs on each backend:
- localfs;
- aws-s3 on moto's standalone server (tests/helpers/moto_server.py);
- aws-s3 on the Ceph RADOS Gateway (tests/helpers/ceph_rgw.sh), started once
  per session by the shared fixture in conftest.py.
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENGINE = os.path.join(REPO, "plugins", "module_utils")
HELPERS = os.path.join(REPO, "tests", "helpers")
EXIT_CONFIG, EXIT_VERIFY = 2, 5


# -- backends ---------------------------------------------------------------
class LocalStore:
    name = "localfs"

    def __init__(self, tmp):
        self.root = str(tmp / "store")

    def task(self):
        return {"backend": "localfs", "backend-param": {"root": self.root}}

    def read(self, prefix, path):
        with open(os.path.join(self.root, prefix, path), "rb") as f:
            return f.read()

    def write(self, prefix, path, data):
        p = os.path.join(self.root, prefix, path)
        os.chmod(p, 0o600)
        with open(p, "wb") as f:
            f.write(data)

    def delete(self, prefix, path):
        os.unlink(os.path.join(self.root, prefix, path))

    def make_incomplete(self, prefix, new_prefix):
        """A copy of `prefix` as a run that died before its manifest leaves it."""
        dst = os.path.join(self.root, new_prefix + ".palhm-partial")
        shutil.copytree(os.path.join(self.root, prefix), dst)
        os.unlink(os.path.join(dst, ".palhm-manifest.json"))


class S3Store:
    """A fresh bucket on an S3 server {endpoint, access_key, secret_key, region}."""

    name = "aws-s3"

    def __init__(self, server):
        import boto3
        import botocore.config
        self.bucket = "palhm-restore-%s" % uuid.uuid4().hex[:12]
        self.root = "backup/restore-%s" % uuid.uuid4().hex[:6]
        self.param = {"bucket": self.bucket, "root": "/" + self.root, "endpoint-url": server["endpoint"],
                      "region": server["region"], "access-key": server["access_key"],
                      "secret-key": server["secret_key"]}
        self.s3 = boto3.client(
            "s3", endpoint_url=server["endpoint"], region_name=server["region"],
            aws_access_key_id=server["access_key"], aws_secret_access_key=server["secret_key"],
            config=botocore.config.Config(s3={"addressing_style": "path"},
                                          request_checksum_calculation="when_required",
                                          response_checksum_validation="when_required"))
        self.s3.create_bucket(Bucket=self.bucket)

    def task(self):
        return {"modules": ["aws"], "backend": "aws-s3", "backend-param": dict(self.param)}

    def key(self, prefix, path):
        return "%s/%s/%s" % (self.root, prefix, path)

    def read(self, prefix, path):
        return self.s3.get_object(Bucket=self.bucket, Key=self.key(prefix, path))["Body"].read()

    def write(self, prefix, path, data):
        self.s3.put_object(Bucket=self.bucket, Key=self.key(prefix, path), Body=data)

    def delete(self, prefix, path):
        self.s3.delete_object(Bucket=self.bucket, Key=self.key(prefix, path))

    def make_incomplete(self, prefix, new_prefix):
        """A copy of `prefix` as a run that died before its manifest leaves it:
        the objects and the in-progress marker, no manifest."""
        src = "%s/%s/" % (self.root, prefix)
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=src):
            for o in page.get("Contents", ()):
                rel = o["Key"][len(src):]
                if rel != ".palhm-manifest.json":
                    self.s3.copy_object(Bucket=self.bucket, Key=self.key(new_prefix, rel),
                                        CopySource={"Bucket": self.bucket, "Key": o["Key"]})
        self.write(new_prefix, ".palhm-in-progress", b"{}")

    def cleanup(self):
        keys = [o["Key"] for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
                for o in page.get("Contents", ())]
        for i in range(0, len(keys), 1000):
            self.s3.delete_objects(Bucket=self.bucket,
                                   Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})
        self.s3.delete_bucket(Bucket=self.bucket)


@pytest.fixture(params=["localfs", "moto", "ceph"])
def store(request, tmp_path):
    if request.param == "localfs":
        yield LocalStore(tmp_path)
        return
    st = S3Store(request.getfixturevalue(request.param))
    yield st
    st.cleanup()


# -- helpers ------------------------------------------------------------------
def palhm(cfg, *args, stdin=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = ENGINE + os.pathsep + env.get("PYTHONPATH", "")
    env["PALHM_RUN_DIR"] = os.path.join(os.path.dirname(cfg), "run")
    return subprocess.run([sys.executable, "-m", "palhm", "-f", cfg] + list(args), capture_output=True,
                          env=env, timeout=120, stdin=subprocess.DEVNULL if stdin is None else stdin, check=False)


def ok(proc):
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc


def make_tree(root):
    """Files of several sizes (one bigger than the 1 MiB read chunk), a
    subdirectory, an empty file and a symlink."""
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    (root / "sub" / "notes.txt").write_text("restore me\n" * 100)
    (root / "sub" / "deeper" / "empty").write_bytes(b"")
    (root / "link").symlink_to("sub/notes.txt")
    return root


def write_config(tmp, store, src, extra_objects=()):
    task = {"id": "bk", "type": "backup",
            "objects": [
                {"path": "src.tar.zst", "pipeline": [
                    {"type": "exec-inline", "argv": ["tar", "-C", str(src), "-c", "."]},
                    {"type": "exec", "exec-id": "zstd"}]},
                {"path": "raw/big.bin", "pipeline": [
                    {"type": "exec-inline", "argv": ["cat", str(src / "big.bin")]}]},
            ] + list(extra_objects)}
    spec = store.task()
    doc = {"execs": [{"id": "zstd", "argv": ["zstd", "-q", "-c"]},
                     {"id": "zstd-d", "argv": ["zstd", "-d", "-q", "-c"]}],
           "tasks": [task]}
    if "modules" in spec:
        doc["modules"] = spec.pop("modules")
    task.update(spec)
    cfg = tmp / "palhm.json"
    cfg.write_text(json.dumps(doc, indent=1))
    return str(cfg)


def copies(cfg):
    return json.loads(ok(palhm(cfg, "list", "bk", "--json")).stdout)


def same_tree(a, b):
    cmp = filecmp.dircmp(str(a), str(b))
    assert not cmp.left_only and not cmp.right_only and not cmp.diff_files and not cmp.funny_files, \
        (cmp.left_only, cmp.right_only, cmp.diff_files)
    for name in cmp.common_files:
        pa, pb = a / name, b / name
        if pa.is_symlink():
            assert os.readlink(str(pa)) == os.readlink(str(pb))
        else:
            assert pa.read_bytes() == pb.read_bytes(), name
    for d in cmp.common_dirs:
        same_tree(a / d, b / d)


@pytest.fixture
def backed_up(tmp_path, store):
    src = make_tree(tmp_path / "src")
    cfg = write_config(tmp_path, store, src)
    ok(palhm(cfg, "run", "bk"))
    (copy,) = copies(cfg)
    assert copy["complete"]
    return cfg, src, copy["prefix"]


# -- stories -------------------------------------------------------------------
def test_restore_through_zstd_and_tar_gives_back_the_tree_byte_for_byte(tmp_path, backed_up):
    cfg, src, _prefix = backed_up
    out = tmp_path / "out"
    out.mkdir()
    p = ok(palhm(cfg, "restore", "bk", "src.tar.zst", "--exec", "zstd-d",
                 "--exec-inline", "tar -x -C %s" % out))
    assert p.stdout == b""
    same_tree(src, out)


def test_restore_to_stdout_streams_the_stored_object_unchanged(backed_up):
    cfg, src, prefix = backed_up
    p = ok(palhm(cfg, "restore", "bk", "raw/big.bin"))
    assert p.stdout == (src / "big.bin").read_bytes()
    # The same with the copy named explicitly.
    p = ok(palhm(cfg, "restore", "bk", prefix, "raw/big.bin"))
    assert hashlib.sha256(p.stdout).digest() == hashlib.sha256((src / "big.bin").read_bytes()).digest()


def test_restore_into_a_file_then_through_a_pipeline_into_a_file(tmp_path, backed_up):
    cfg, src, _prefix = backed_up
    dest = tmp_path / "restored.tar.zst"
    ok(palhm(cfg, "restore", "bk", "src.tar.zst", "--into", str(dest)))
    assert oct(dest.stat().st_mode & 0o777) == oct(0o600)
    tar = tmp_path / "restored.tar"
    ok(palhm(cfg, "restore", "bk", "src.tar.zst", "--exec", "zstd-d", "--into", str(tar)))
    assert subprocess.run(["zstd", "-d", "-q", "-c", str(dest)], capture_output=True, check=True).stdout \
        == tar.read_bytes()
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["tar", "-x", "-C", str(out), "-f", str(tar)], check=True)
    same_tree(src, out)
    assert not [n for n in os.listdir(str(tmp_path)) if n.endswith(".palhm-restore")]


def test_an_older_copy_is_restored_by_its_prefix_and_the_newest_by_default(tmp_path, store, backed_up):
    cfg, src, first = backed_up
    old = (src / "big.bin").read_bytes()
    (src / "big.bin").write_bytes(b"changed since the first copy\n")
    ok(palhm(cfg, "run", "bk"))
    prefixes = [c["prefix"] for c in copies(cfg)]
    assert len(prefixes) == 2 and prefixes[0] == first
    assert ok(palhm(cfg, "restore", "bk", first, "raw/big.bin")).stdout == old
    assert ok(palhm(cfg, "restore", "bk", "raw/big.bin")).stdout == b"changed since the first copy\n"


def test_a_corrupted_object_fails_the_pipeline_restore_naming_the_object(tmp_path, store, backed_up):
    cfg, _src, prefix = backed_up
    data = bytearray(store.read(prefix, "src.tar.zst"))
    data[len(data) // 2] ^= 0xFF
    store.write(prefix, "src.tar.zst", bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    p = palhm(cfg, "restore", "bk", "src.tar.zst", "--exec", "zstd-d", "--exec-inline", "tar -x -C %s" % out)
    err = p.stderr.decode()
    assert p.returncode == EXIT_VERIFY, err
    assert "object src.tar.zst of copy %s does not match its manifest" % prefix in err
    # With --verify-first nothing reaches tar at all.
    shutil.rmtree(str(out))
    out.mkdir()
    p = palhm(cfg, "restore", "bk", "src.tar.zst", "--verify-first", "--exec", "zstd-d",
              "--exec-inline", "tar -x -C %s" % out)
    assert p.returncode == EXIT_VERIFY and "src.tar.zst" in p.stderr.decode()
    assert os.listdir(str(out)) == []


def test_a_corrupted_object_never_replaces_the_destination_file(tmp_path, store, backed_up):
    cfg, _src, prefix = backed_up
    data = bytearray(store.read(prefix, "raw/big.bin"))
    data[12345] ^= 0x01
    store.write(prefix, "raw/big.bin", bytes(data))
    dest = tmp_path / "big.bin"
    dest.write_bytes(b"the file that was there before\n")
    p = palhm(cfg, "restore", "bk", "raw/big.bin", "--into", str(dest))
    assert p.returncode == EXIT_VERIFY
    assert "object raw/big.bin of copy %s does not match its manifest" % prefix in p.stderr.decode()
    assert dest.read_bytes() == b"the file that was there before\n"
    assert not [n for n in os.listdir(str(tmp_path)) if n.endswith(".palhm-restore")]
    # To stdout, the consumer never gets the whole (corrupt) stream.
    p = palhm(cfg, "restore", "bk", "raw/big.bin")
    assert p.returncode == EXIT_VERIFY and len(p.stdout) < len(data)


def test_a_truncated_object_fails_naming_the_object(tmp_path, store, backed_up):
    cfg, _src, prefix = backed_up
    data = store.read(prefix, "raw/big.bin")
    store.write(prefix, "raw/big.bin", data[:-1])
    p = palhm(cfg, "restore", "bk", "raw/big.bin", "--into", str(tmp_path / "x"))
    assert p.returncode == EXIT_VERIFY and "raw/big.bin" in p.stderr.decode()
    assert not (tmp_path / "x").exists()


def test_a_missing_object_fails_naming_the_object(tmp_path, store, backed_up):
    cfg, _src, prefix = backed_up
    store.delete(prefix, "raw/big.bin")
    p = palhm(cfg, "restore", "bk", "raw/big.bin")
    err = p.stderr.decode()
    assert p.returncode == EXIT_VERIFY, err
    assert "object raw/big.bin of copy %s is in the manifest but missing" % prefix in err


def test_an_incomplete_copy_is_never_restored(tmp_path, store, backed_up):
    cfg, src, prefix = backed_up
    store.make_incomplete(prefix, "2099-01-01T00:00:00+00:00")
    p = palhm(cfg, "restore", "bk", "2099-01-01T00:00:00+00:00", "raw/big.bin")
    assert p.returncode == EXIT_VERIFY
    assert "incomplete" in p.stderr.decode() and p.stdout == b""
    # The newest *complete* copy is the default.
    assert ok(palhm(cfg, "restore", "bk", "raw/big.bin")).stdout == (src / "big.bin").read_bytes()


def test_unknown_object_and_prefix_are_usage_errors(backed_up):
    cfg, _src, _prefix = backed_up
    p = palhm(cfg, "restore", "bk", "nope.tar")
    assert p.returncode == EXIT_CONFIG
    assert 'no object "nope.tar"' in p.stderr.decode() and "src.tar.zst" in p.stderr.decode()
    p = palhm(cfg, "restore", "bk", "1999-01-01T00:00:00+00:00", "src.tar.zst")
    assert p.returncode == EXIT_CONFIG and "no copy" in p.stderr.decode()
    p = palhm(cfg, "restore", "bk", "src.tar.zst", "--exec", "no-such-exec")
    assert p.returncode == EXIT_CONFIG and "no exec named" in p.stderr.decode()


def test_a_failing_pipeline_stage_is_named(tmp_path, backed_up):
    cfg, _src, _prefix = backed_up
    p = palhm(cfg, "restore", "bk", "src.tar.zst", "--exec-inline", "sh -c 'cat >/dev/null; echo boom >&2; exit 7'")
    err = p.stderr.decode()
    assert p.returncode == 1, err
    assert "exited with code 7" in err and "boom" in err
