# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a scenario's copies live, audited without trusting palhm: a localfs
root read with os calls, an S3 prefix read with boto3 straight from the
server. An audit says which copies are really complete (every object there
with the SHA-256 the campaign computed itself) and which copies are presented
as complete (or kept like one) without being so."""

from __future__ import annotations

import json
import os

from lib import s3_client, s3_object_sha, s3_state, sha_file

MANIFEST = ".palhm-manifest.json"
MARKER = ".palhm-in-progress"
INCOMPLETE_SUFFIXES = (".palhm-partial", ".palhm-deleting")


def _check_manifest(manifest, objs, where):
    """The manifest must list exactly our objects with our sizes and hashes."""
    probs = []
    if not isinstance(manifest, dict):
        return ["%s: manifest missing or unreadable" % where]
    listed = {o.get("path"): o for o in manifest.get("objects", []) if isinstance(o, dict)}
    for o in objs:
        m = listed.get(o.path)
        if m is None:
            probs.append("%s: manifest lacks %s" % (where, o.path))
        elif m.get("size") != o.size or m.get("sha256") != o.sha:
            probs.append("%s: manifest entry of %s is not the object made (size %s/%s)"
                         % (where, o.path, m.get("size"), o.size))
    if set(listed) != set(o.path for o in objs):
        probs.append("%s: manifest lists %s" % (where, sorted(listed)))
    return probs


class LocalfsTarget:
    kind = "localfs"

    def __init__(self, root, objs):
        self.root = str(root)
        self.objs = objs
        self.checked = {}  # prefix -> (mtime of manifest) already content-checked

    def backend(self, limit):
        return "localfs", {"root": self.root, "nb-copy-limit": limit}

    def audit(self):
        """-> (complete prefixes, fake prefixes with reasons, incomplete leftovers, extra)"""
        complete, fake, leftovers = set(), {}, []
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            names = []
        for name in names:
            full = os.path.join(self.root, name)
            if os.path.islink(full) or not os.path.isdir(full):
                continue
            if name.endswith(INCOMPLETE_SUFFIXES):
                leftovers.append(name)
                continue
            # Anything else is presented as a copy: it must be whole.
            mpath = os.path.join(full, MANIFEST)
            try:
                with open(mpath, encoding="utf-8") as f:
                    manifest = json.load(f)
                stamp = os.stat(mpath).st_mtime_ns
            except (OSError, ValueError):
                fake[name] = "directory without a manifest (kept like a copy by rotation and list)"
                continue
            if self.checked.get(name) == stamp:
                complete.add(name)
                continue
            probs = _check_manifest(manifest, self.objs, name)
            for o in self.objs:
                fp = os.path.join(full, o.path)
                try:
                    if sha_file(fp) != o.sha:
                        probs.append("%s/%s: content is not the object made" % (name, o.path))
                except OSError as e:
                    probs.append("%s/%s: %s" % (name, o.path, e))
            if probs:
                fake[name] = "; ".join(probs)
            else:
                self.checked[name] = stamp
                complete.add(name)
        return complete, fake, leftovers, []


class S3Target:
    kind = "aws-s3"

    def __init__(self, endpoint, bucket, root, objs, part_size=5 * 1024 * 1024):
        self.endpoint = endpoint
        self.bucket = bucket
        self.root = root
        self.objs = objs
        self.part_size = part_size
        self.client = s3_client(endpoint)
        self.checked = {}

    def create_bucket(self):
        self.client.create_bucket(Bucket=self.bucket)

    def backend(self, limit, endpoint=None):
        return "aws-s3", {"bucket": self.bucket, "root": "/" + self.root, "endpoint-url": endpoint or self.endpoint,
                          "region": "us-east-1", "nb-copy-limit": limit, "part-size": self.part_size,
                          "upload-concurrency": 2}

    def audit(self):
        state, uploads = s3_state(self.client, self.bucket, self.root)
        complete, fake, leftovers = set(), {}, []
        for prefix in sorted(state):
            info = state[prefix]
            if ".palhm-manifest.json" not in info["keys"]:
                if info["marker"]:
                    leftovers.append(prefix)
                else:
                    fake[prefix] = "objects without a manifest nor an in-progress marker (legacy-looking)"
                continue
            key_sig = tuple(sorted(info["keys"].items()))
            if self.checked.get(prefix) == key_sig:
                complete.add(prefix)
                continue
            probs = _check_manifest(info["manifest"], self.objs, prefix)
            for o in self.objs:
                key = "%s/%s/%s" % (self.root, prefix, o.path)
                if info["keys"].get(o.path) != o.size:
                    probs.append("%s/%s: size %s, made %d" % (prefix, o.path, info["keys"].get(o.path), o.size))
                elif s3_object_sha(self.client, self.bucket, key) != o.sha:
                    probs.append("%s/%s: content is not the object made" % (prefix, o.path))
            if probs:
                fake[prefix] = "; ".join(probs)
            else:
                self.checked[prefix] = key_sig
                complete.add(prefix)
        return complete, fake, leftovers, [u["Key"] for u in uploads]
