# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The aws-s3 backend end to end, through the real `palhm` command, against
real S3 servers this test starts itself: a single-node Ceph RADOS Gateway
(tests/helpers/ceph_rgw.sh) for backups, rotation, storage classes, failures
and kills; moto's standalone server (tests/helpers/moto_server.py) for the
fast listing, pagination and cleanup stories. A server that does not come up
fails the tests; nothing is skipped.

Run: tests/run.sh functional -k s3   (or pytest tests/functional/test_s3_backend.py
with PYTHONPATH=plugins/module_utils and boto3, moto[server] installed; root).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

import boto3  # a test dependency (tests/requirements-test.txt), as is moto[server]
import botocore.config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HELPERS = os.path.join(REPO, "tests", "helpers")
sys.path.insert(0, HELPERS)


MANIFEST = ".palhm-manifest.json"
MARKER = ".palhm-in-progress"


class S3Story:
    """One bucket on one server, the environment `palhm` runs in, and helpers."""

    def __init__(self, server, tmp_path):
        self.server = server
        self.tmp = tmp_path
        self.bucket = "palhm-%s" % uuid.uuid4().hex[:12]
        self.root = "backup/host-%s" % uuid.uuid4().hex[:6]
        aws_config = tmp_path / "aws-config"
        aws_config.write_text("")  # never read the developer's ~/.aws
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith("AWS_"):
                del self.env[k]
        self.env.update({
            "AWS_ACCESS_KEY_ID": server["access_key"], "AWS_SECRET_ACCESS_KEY": server["secret_key"],
            "AWS_CONFIG_FILE": str(aws_config), "AWS_SHARED_CREDENTIALS_FILE": str(aws_config),
            "AWS_EC2_METADATA_DISABLED": "true",
            "PALHM_RUN_DIR": str(tmp_path / "run"), "PALHM_STATE_DIR": str(tmp_path / "state"),
            "PYTHONPATH": os.path.join(REPO, "plugins", "module_utils"),
        })
        self.s3 = boto3.client(
            "s3", endpoint_url=server["endpoint"], region_name=server["region"],
            aws_access_key_id=server["access_key"], aws_secret_access_key=server["secret_key"],
            config=botocore.config.Config(s3={"addressing_style": "path"},
                                          request_checksum_calculation="when_required",
                                          response_checksum_validation="when_required"))
        self.s3.create_bucket(Bucket=self.bucket)

    # -- config and command ----------------------------------------------
    def config(self, objects, groups=None, name="palhm.conf", **params):
        if groups is None:  # the groups of GROUPS that these objects use
            used = {o.get("group") for o in objects}
            groups = [g for g in GROUPS if g["id"] in used]
        backend_param = {"bucket": self.bucket, "root": "/" + self.root + "/",
                         "endpoint-url": self.server["endpoint"], "region": self.server["region"]}
        backend_param.update(params)
        conf = {"modules": ["aws"], "vl": 3, "nb-workers": 4,
                "tasks": [{"id": "backup", "type": "backup", "backend": "aws-s3",
                           "backend-param": backend_param, "object-groups": list(groups), "objects": objects}]}
        path = self.tmp / name
        path.write_text(json.dumps(conf, indent=1))
        return str(path)

    def palhm(self, conf, *args, timeout=300):
        return subprocess.run([sys.executable, "-m", "palhm", "-f", conf] + list(args), env=self.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout,
                              cwd=str(self.tmp), check=False)

    def run_ok(self, conf):
        proc = self.palhm(conf, "run", "backup")
        assert proc.returncode == 0, proc.stderr
        return proc

    def list_json(self, conf):
        proc = self.palhm(conf, "list", "backup", "--json")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    # -- looking at the bucket -------------------------------------------
    def objects(self, prefix=""):
        out = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                      Prefix=self.root + "/" + prefix):
            for o in page.get("Contents", ()):
                out[o["Key"][len(self.root) + 1:]] = o
        return out

    def prefixes(self):
        return sorted({k.split("/", 1)[0] for k in self.objects()})

    def uploads(self):
        return self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])

    def storage_class(self, rel):
        return self.s3.head_object(Bucket=self.bucket, Key=self.root + "/" + rel).get("StorageClass", "STANDARD")

    def get(self, rel):
        return self.s3.get_object(Bucket=self.bucket, Key=self.root + "/" + rel)["Body"].read()

    def put_many(self, items):
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda kv: self.put(*kv), items))

    def destroy(self):
        """Empty and delete the bucket (Ceph keeps its data between sessions)."""
        for u in self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []):
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=u["Key"], UploadId=u["UploadId"])
        keys = [{"Key": o["Key"]} for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
                for o in page.get("Contents", ())]
        for i in range(0, len(keys), 1000):
            self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys[i:i + 1000], "Quiet": True})
        self.s3.delete_bucket(Bucket=self.bucket)

    def put(self, rel, body=b"x"):
        self.s3.put_object(Bucket=self.bucket, Key=self.root + "/" + rel, Body=body)


@pytest.fixture
def rgw(ceph, tmp_path):
    story = S3Story(ceph, tmp_path)
    yield story
    story.destroy()


@pytest.fixture
def moto_s3(moto, tmp_path):
    return S3Story(moto, tmp_path)  # moto's data goes with its process


def inline(*argv):
    return {"type": "exec-inline", "argv": list(argv)}


def sh(script):
    # A test pipeline stage written as a small shell script (the command the
    # user configures; palhm itself never uses a shell).
    return inline("sh", "-c", script)


def small_objects():
    return [
        {"path": "etc/os-release", "group": "system", "pipeline": [inline("cat", "/etc/os-release")]},
        {"path": "data/random.bin", "group": "system", "alloc-size": 20 * 1024 * 1024,
         "pipeline": [inline("head", "-c", str(20 * 1024 * 1024 + 17), "/dev/urandom")]},
        {"path": "report.txt.gz", "group": "report",
         "pipeline": [inline("printf", "made after the system group\\n"), inline("gzip", "-c")]},
    ]


GROUPS = [{"id": "system"}, {"id": "report", "depends": ["system"]}]


# -- Ceph RGW: the stories of the issue -------------------------------------------
def test_three_objects_in_two_dependent_groups_land_under_their_keys_with_the_sink_class(rgw):
    conf = rgw.config(small_objects(), **{"sink-storage-class": "STANDARD_IA"})
    rgw.run_ok(conf)
    copies = rgw.list_json(conf)
    assert len(copies) == 1 and copies[0]["state"] == "complete"
    prefix = copies[0]["prefix"]
    keys = set(rgw.objects())
    assert keys == {prefix + "/" + p for p in ("etc/os-release", "data/random.bin", "report.txt.gz", MANIFEST)}
    manifest = json.loads(rgw.get(prefix + "/" + MANIFEST))
    by_path = {o["path"]: o for o in manifest["objects"]}
    for path in ("etc/os-release", "data/random.bin", "report.txt.gz"):
        body = rgw.get(prefix + "/" + path)
        assert by_path[path]["size"] == len(body)
        assert by_path[path]["sha256"] == hashlib.sha256(body).hexdigest()
        assert rgw.storage_class(prefix + "/" + path) == "STANDARD_IA"
    assert by_path["data/random.bin"]["size"] == 20 * 1024 * 1024 + 17
    with open("/etc/os-release", "rb") as f:
        assert rgw.get(prefix + "/etc/os-release") == f.read()
    assert rgw.uploads() == []
    proc = rgw.palhm(conf, "verify", "backup")
    assert proc.returncode == 0, proc.stderr
    restored = rgw.tmp / "restored.bin"
    proc = rgw.palhm(conf, "restore", "backup", "data/random.bin", "--into", str(restored))
    assert proc.returncode == 0, proc.stderr
    assert restored.read_bytes() == rgw.get(prefix + "/data/random.bin")


def test_rotation_with_nb_copy_limit_2_after_three_runs_leaves_the_two_newest(rgw):
    conf = rgw.config(small_objects()[:1], **{"nb-copy-limit": 2})
    made = []
    for dummy in range(3):
        rgw.run_ok(conf)
        made.append(rgw.list_json(conf)[-1]["prefix"])
    assert len(set(made)) == 3
    assert [c["prefix"] for c in rgw.list_json(conf)] == made[1:]
    assert rgw.prefixes() == made[1:]


def test_rot_storage_class_moves_the_new_copy_but_not_its_manifest(rgw):
    conf = rgw.config(small_objects(), **{"sink-storage-class": "STANDARD", "rot-storage-class": "GLACIER"})
    rgw.run_ok(conf)
    (copy,) = rgw.list_json(conf)
    prefix = copy["prefix"]
    for path in ("etc/os-release", "data/random.bin", "report.txt.gz"):
        assert rgw.storage_class(prefix + "/" + path) == "GLACIER"
    assert rgw.storage_class(prefix + "/" + MANIFEST) == "STANDARD"
    assert copy["state"] == "complete" and copy["objects"] == 3


def test_a_failing_stage_leaves_no_object_and_no_unfinished_upload(rgw):
    objects = [
        {"path": "ok.txt", "pipeline": [inline("cat", "/etc/os-release")]},
        # 24 MiB into a multipart upload, then the dump fails.
        {"path": "broken.dump", "pipeline": [sh("head -c 25165824 /dev/urandom; echo dump broke >&2; exit 3"),
                                             inline("cat")]},
    ]
    conf = rgw.config(objects)
    proc = rgw.palhm(conf, "run", "backup")
    assert proc.returncode == 1
    assert "exited with code 3" in proc.stderr and "dump broke" in proc.stderr
    assert rgw.objects() == {}
    assert rgw.uploads() == []
    assert rgw.list_json(conf) == []


def test_kill_9_mid_upload_then_a_new_run_leaves_only_complete_copies(rgw):
    good = rgw.config(small_objects()[:2])
    rgw.run_ok(good)
    slow = rgw.config([{"path": "slow.bin", "pipeline": [
        sh("head -c 41943040 /dev/urandom; sleep 120")]}], name="slow.conf")
    proc = subprocess.Popen([sys.executable, "-m", "palhm", "-f", slow, "run", "backup"], env=rgw.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            cwd=str(rgw.tmp))
    try:
        deadline = time.monotonic() + 60
        while not rgw.uploads():
            assert proc.poll() is None, "palhm ended before the upload started"
            assert time.monotonic() < deadline, "no multipart upload started within 60 s"
            time.sleep(0.2)
        time.sleep(1.0)  # some parts uploaded
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    states = {c["prefix"]: c["state"] for c in rgw.list_json(good)}
    assert sorted(states.values()) == ["complete", "incomplete"]
    assert rgw.uploads() != []
    rgw.run_ok(good)
    copies = rgw.list_json(good)
    assert len(copies) == 2 and all(c["state"] == "complete" for c in copies)
    assert rgw.uploads() == []
    for prefix in rgw.prefixes():
        assert prefix + "/" + MANIFEST in rgw.objects(prefix + "/")
        assert prefix + "/" + MARKER not in rgw.objects(prefix + "/")


def test_sigterm_mid_upload_rolls_the_copy_back_at_once(rgw):
    slow = rgw.config([{"path": "slow.bin", "pipeline": [sh("head -c 41943040 /dev/urandom; sleep 120")]}])
    proc = subprocess.Popen([sys.executable, "-m", "palhm", "-f", slow, "run", "backup"], env=rgw.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            cwd=str(rgw.tmp))
    try:
        deadline = time.monotonic() + 60
        while not rgw.uploads():
            assert proc.poll() is None, "palhm ended before the upload started"
            assert time.monotonic() < deadline, "no multipart upload started within 60 s"
            time.sleep(0.2)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        stderr = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 4, stderr
    assert time.monotonic() - t0 < 30
    assert rgw.objects() == {}
    assert rgw.uploads() == []


def test_rot_storage_class_on_objects_over_the_copy_limit_uses_a_multipart_copy(rgw, monkeypatch):
    # The engine API, with the 5 GiB CopyObject limit lowered to 5 MiB so a
    # 12 MiB object takes the in-place multipart copy (5 + 5 + 2 MiB parts).
    for k in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(k)
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_CONFIG_FILE"):
        monkeypatch.setenv(k, rgw.env[k])
    from palhm.backends import aws
    monkeypatch.setattr(aws, "MAX_COPY_SIZE", 5 * 1024 * 1024)
    monkeypatch.setattr(aws, "COPY_PART_SIZE", 5 * 1024 * 1024)
    params = aws.parse_params({"bucket": rgw.bucket, "root": rgw.root, "endpoint-url": rgw.server["endpoint"],
                               "rot-storage-class": "STANDARD_IA"}, "test")
    backend = aws.make(params, "backup")
    prefix = "2026-01-01T00:00:00+00:00"
    backend.begin(prefix)
    data = os.urandom(12 * 1024 * 1024 + 5)
    sink = backend.open_sink("big.bin")
    for i in range(0, len(data), 1 << 20):
        sink.feed(data[i:i + (1 << 20)])
    info = sink.finish()
    backend.commit({"objects": [{"path": "big.bin", "size": info.size, "sha256": info.sha256}]})
    assert backend.after_rotation(prefix) == [rgw.root + "/" + prefix + "/big.bin"]
    assert rgw.storage_class(prefix + "/big.bin") == "STANDARD_IA"
    assert rgw.get(prefix + "/big.bin") == data
    assert rgw.uploads() == []


# -- moto: listing, pagination and cleanup ----------------------------------------
def manifest_for(prefix, objects):
    return json.dumps({"format": "palhm-manifest/1", "prefix": prefix, "task": "backup",
                       "objects": [{"path": p, "size": s, "sha256": "0" * 64} for p, s in objects]}).encode()


def test_list_pages_through_more_than_a_thousand_copies_oldest_first(moto_s3):
    prefixes = ["2020-01-01T00:%02d:%02d+00:00" % divmod(i, 60) for i in range(1203)]
    moto_s3.put_many([(p + "/" + MANIFEST, manifest_for(p, [("a", 3)])) for p in prefixes]
                     + [(p + "/a", b"abc") for p in prefixes])
    conf = moto_s3.config(small_objects()[:1])
    copies = moto_s3.list_json(conf)
    assert [c["prefix"] for c in copies] == prefixes
    assert all(c["state"] == "complete" and c["size"] == 3 and c["objects"] == 1 for c in copies)


def test_rotation_deletes_a_copy_of_thousands_of_objects_in_batches(moto_s3):
    legacy = "2020-01-01T00:00:00+00:00"
    moto_s3.put_many([("%s/files/%04d" % (legacy, i), b"") for i in range(2100)])
    conf = moto_s3.config(small_objects()[:1], **{"nb-copy-limit": 1})
    proc = moto_s3.run_ok(conf)
    assert "rotation removed copy %s" % legacy in proc.stderr
    assert legacy not in moto_s3.prefixes()
    assert len(moto_s3.list_json(conf)) == 1


def test_a_run_cleans_incomplete_copies_and_unfinished_uploads_but_keeps_the_rest(moto_s3):
    done, crashed, legacy = ("2021-01-01T00:00:00+00:00", "2021-01-02T00:00:00+00:00",
                             "2021-01-03T00:00:00+00:00")
    moto_s3.put(done + "/a", b"abc")
    moto_s3.put(done + "/" + MANIFEST, manifest_for(done, [("a", 3)]))
    # The marker of a run of this host that died (no process has that pid).
    moto_s3.put(crashed + "/" + MARKER, json.dumps({"task": "backup", "host": os.uname()[1],
                                                    "pid": 4194305}).encode())
    moto_s3.put(crashed + "/a", b"half")
    moto_s3.put(legacy + "/old.tar", b"made by the original palhm")
    root = moto_s3.root + "/"
    orphan = moto_s3.s3.create_multipart_upload(Bucket=moto_s3.bucket, Key=root + crashed + "/big")["UploadId"]
    moto_s3.s3.upload_part(Bucket=moto_s3.bucket, Key=root + crashed + "/big", UploadId=orphan, PartNumber=1,
                           Body=b"p" * 1024)
    elsewhere = moto_s3.s3.create_multipart_upload(Bucket=moto_s3.bucket, Key="not-palhm/file")["UploadId"]
    conf = moto_s3.config(small_objects()[:1])
    before = {c["prefix"]: c["state"] for c in moto_s3.list_json(conf)}
    assert before == {done: "complete", crashed: "incomplete", legacy: "legacy"}
    proc = moto_s3.run_ok(conf)
    assert "removed incomplete copy %s" % crashed in proc.stderr
    after = {c["prefix"]: c["state"] for c in moto_s3.list_json(conf)}
    assert after.pop(done) == "complete" and after.pop(legacy) == "legacy"
    assert list(after.values()) == ["complete"]  # the new copy
    assert crashed not in moto_s3.prefixes()
    assert [u["UploadId"] for u in moto_s3.uploads()] == [elsewhere]


def test_without_an_aws_config_the_default_profile_falls_back_to_the_environment(moto_s3):
    conf = moto_s3.config(small_objects()[:1], profile="default")
    moto_s3.run_ok(conf)
    assert len(moto_s3.list_json(conf)) == 1


def test_a_missing_named_profile_is_a_clear_error(moto_s3):
    conf = moto_s3.config(small_objects()[:1], profile="no-such-profile")
    proc = moto_s3.palhm(conf, "run", "backup")
    assert proc.returncode != 0
    assert "no-such-profile" in proc.stderr


def test_secrets_from_the_config_are_used_but_never_printed(moto_s3):
    secret = "Secret-%s" % uuid.uuid4().hex
    env = moto_s3.env
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    conf = moto_s3.config(small_objects()[:1], **{"access-key": "testing", "secret-key": secret})
    proc = moto_s3.run_ok(conf)  # moto accepts any secret
    assert secret not in proc.stderr + proc.stdout
    shown = moto_s3.palhm(conf, "config")
    assert shown.returncode == 0, shown.stderr
    assert secret not in shown.stdout + shown.stderr
