# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One bucket on moto, a TcpProxy in front of it, and the environment the
real `palhm` command runs in, for the S3 network-fault stories
(tests/functional/test_s3_lost_reply.py, test_s3_stall.py). palhm talks to
the proxy; the test looks at the bucket straight through moto."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import boto3
import botocore.config

from tcp_proxy import TcpProxy

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class ProxiedStory:
    def __init__(self, server, tmp_path):
        self.server = server
        self.tmp = tmp_path
        self.bucket = "palhm-%s" % uuid.uuid4().hex[:12]
        self.root = "backup/host-%s" % uuid.uuid4().hex[:6]
        self.proxy = TcpProxy(server["endpoint"]).start()
        aws_config = tmp_path / "aws-config"
        aws_config.write_text("")  # never read the developer's ~/.aws
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
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

    def close(self):
        self.proxy.stop()

    def config(self, objects, name="palhm.conf", direct=False, **params):
        """A config with one backup task; through the proxy unless direct."""
        backend_param = {"bucket": self.bucket, "root": self.root, "region": self.server["region"],
                         "endpoint-url": self.server["endpoint"] if direct else self.proxy.url}
        backend_param.update(params)
        conf = {"modules": ["aws"], "vl": 3, "nb-workers": 2,
                "tasks": [{"id": "backup", "type": "backup", "backend": "aws-s3",
                           "backend-param": backend_param, "objects": objects}]}
        path = self.tmp / name
        path.write_text(json.dumps(conf, indent=1))
        return str(path)

    def argv(self, conf, *args):
        return [sys.executable, "-m", "palhm", "-f", conf] + list(args)

    def palhm(self, conf, *args, timeout=300):
        return subprocess.run(self.argv(conf, *args), env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=timeout, cwd=str(self.tmp), check=False)

    def start(self, conf, *args):
        return subprocess.Popen(self.argv(conf, *args), env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=str(self.tmp), start_new_session=True)

    def keys(self):
        out = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.root + "/"):
            out += [o["Key"][len(self.root) + 1:] for o in page.get("Contents", ())]
        return sorted(out)

    def uploads(self):
        ups = self.s3.list_multipart_uploads(Bucket=self.bucket, Prefix=self.root + "/").get("Uploads", [])
        return sorted(u["Key"][len(self.root) + 1:] for u in ups)
