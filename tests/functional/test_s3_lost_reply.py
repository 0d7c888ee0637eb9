# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A reply lost on the way back: the store carried out the request, the
client saw a reset and retried. The real `palhm` command against moto, with
tests/helpers/tcp_proxy.py in between dropping one chosen reply.

The reliability scenario flaky-s3 found it: a lost reply to
CreateMultipartUpload made botocore create a second upload, palhm completed
that one, and the first stayed behind, unfinished (storage billed, listed by
every `aws s3api list-multipart-uploads`), after a run that succeeded.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "helpers"))

from s3_story import ProxiedStory  # noqa: E402  pylint: disable=wrong-import-position

BIG = 13 * 1024 * 1024  # more than one 8 MiB part: a multipart upload


@pytest.fixture
def story(moto, tmp_path):
    s = ProxiedStory(moto, tmp_path)
    yield s
    s.close()


def big_object():
    stage = {"type": "exec-inline", "argv": ["head", "-c", str(BIG), "/dev/urandom"]}
    return {"path": "data/big.bin", "pipeline": [stage]}


def test_a_lost_reply_to_create_multipart_upload_leaves_no_unfinished_upload_after_success(story):
    story.proxy.drop_reply_of(b"?uploads HTTP/1.1", count=1)
    conf = story.config([big_object()])
    proc = story.palhm(conf, "run", "backup")
    assert proc.returncode == 0, proc.stderr
    assert story.proxy.counts["dropped"] == 1, story.proxy.requests
    creates = [r for r in story.proxy.requests if r.startswith("POST ") and "?uploads " in r]
    assert len(creates) == 2, creates  # the lost one and botocore's retry
    assert story.uploads() == []
    direct = story.config([big_object()], name="direct.conf", direct=True)
    listed = json.loads(story.palhm(direct, "list", "backup", "--json").stdout)
    assert [c["state"] for c in listed] == ["complete"]
    verify = story.palhm(direct, "verify", "backup", listed[0]["prefix"])
    assert verify.returncode == 0, verify.stderr
