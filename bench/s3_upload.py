# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: one stream uploaded to Ceph RGW by palhm's aws-s3 backend and by
`aws s3 cp - s3://...` (awscli from PyPI: the original PALHM's method), in the
same run, from the same source (`cat` of a cached random file). Prints the
throughput of each, their ratio, and the peak RSS and CPU time of each
uploader (GNU time). palhm runs twice per round: with its default settings
(over plain http botocore SHA-256-signs every upload body, as for awscli, on
top of the manifest's SHA-256) and with `payload-signing: false`.

    python3 bench/s3_upload.py [--size-mib 2048] [--rounds 3] [--concurrency N]

Needs root, the Debian packages of tests/helpers/ceph_rgw.sh, /usr/bin/time
(Debian `time`), boto3 for palhm. awscli goes into a cached venv under
${PALHM_CACHE:-/var/cache/palhm-test}/venv-awscli. Goal (issue 4): palhm at
least as fast as awscli, palhm's peak memory under 200 MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("PALHM_CACHE", "/var/cache/palhm-test")
AWSCLI_VENV = os.path.join(CACHE, "venv-awscli")
BUCKET = "palhm-bench"
MiB = 1024 * 1024


def ceph_env():
    proc = subprocess.run([os.path.join(REPO, "tests", "helpers", "ceph_rgw.sh"), "start"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        sys.exit("Ceph RGW did not start:\n" + proc.stderr[-3000:])
    return dict(line.split("=", 1) for line in proc.stdout.split() if "=" in line)


def awscli():
    exe = os.path.join(AWSCLI_VENV, "bin", "aws")
    if not os.access(exe, os.X_OK):
        print("bench: installing awscli from PyPI into %s" % AWSCLI_VENV, file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", AWSCLI_VENV], check=True)
        subprocess.run([os.path.join(AWSCLI_VENV, "bin", "python3"), "-m", "pip", "install", "-q",
                        "--disable-pip-version-check", "awscli"], check=True)
    return exe


def source_file(size):
    path = os.path.join(CACHE, "bench", "stream-%dMiB.bin" % (size // MiB))
    if not os.path.exists(path) or os.path.getsize(path) != size:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        print("bench: writing %s" % path, file=sys.stderr)
        with open(path + ".tmp", "wb") as f:
            left = size
            while left:
                n = min(left, 16 * MiB)
                f.write(os.urandom(n))
                left -= n
        os.rename(path + ".tmp", path)
    # Warm the page cache so both uploaders read the source at memory speed.
    with open(path, "rb") as f:
        while f.read(16 * MiB):
            pass
    return path


def max_rss_mib(time_output):
    with open(time_output) as f:
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", f.read())
    return int(m.group(1)) / 1024 if m else float("nan")


def cpu_seconds(time_output):
    with open(time_output) as f:
        text = f.read()
    user = re.search(r"User time \(seconds\): ([\d.]+)", text)
    system = re.search(r"System time \(seconds\): ([\d.]+)", text)
    return float(user.group(1)) + float(system.group(1)) if user and system else float("nan")


def s3_client(env):
    import boto3
    import botocore.config
    return boto3.client("s3", endpoint_url=env["PALHM_S3_ENDPOINT"], region_name=env["PALHM_S3_REGION"],
                        aws_access_key_id=env["PALHM_S3_ACCESS_KEY"],
                        aws_secret_access_key=env["PALHM_S3_SECRET_KEY"],
                        config=botocore.config.Config(s3={"addressing_style": "path"},
                                                      request_checksum_calculation="when_required"))


def stored(s3, prefix):
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        out.update((o["Key"], o["Size"]) for o in page.get("Contents", ()))
    return out


def empty(s3, prefix):
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys += [{"Key": o["Key"]} for o in page.get("Contents", ())]
    for i in range(0, len(keys), 1000):
        s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys[i:i + 1000], "Quiet": True})


def run_palhm(tmp, env, src, size, concurrency, signing=None):
    conf = os.path.join(tmp, "palhm.conf")
    # Every copy is kept until the end: deleting during the run would make
    # RGW's garbage collector compete with the next upload.
    param = {"bucket": BUCKET, "root": "/bench/palhm", "endpoint-url": env["PALHM_S3_ENDPOINT"],
             "region": env["PALHM_S3_REGION"]}
    if concurrency:
        param["upload-concurrency"] = concurrency
    if signing is not None:
        param["payload-signing"] = signing
    with open(conf, "w") as f:
        json.dump({"modules": ["aws"], "vl": 2, "tasks": [{
            "id": "bench", "type": "backup", "backend": "aws-s3", "backend-param": param,
            "objects": [{"path": "stream.bin", "alloc-size": size,
                         "pipeline": [{"type": "exec-inline", "argv": ["cat", src]}]}]}]}, f)
    timef = os.path.join(tmp, "time-palhm.txt")
    penv = dict(os.environ, PYTHONPATH=os.path.join(REPO, "plugins", "module_utils"),
                PALHM_RUN_DIR=os.path.join(tmp, "run"), PALHM_STATE_DIR=os.path.join(tmp, "state"),
                **aws_env(tmp, env))
    t0 = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-v", "-o", timef, sys.executable, "-m", "palhm", "-f", conf,
                           "run", "bench"], env=penv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          check=False)
    elapsed = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit("palhm failed:\n" + proc.stderr[-3000:])
    return elapsed, max_rss_mib(timef), cpu_seconds(timef)


def aws_env(tmp, env):
    cfg = os.path.join(tmp, "aws-config")
    open(cfg, "w").close()
    return {"AWS_ACCESS_KEY_ID": env["PALHM_S3_ACCESS_KEY"], "AWS_SECRET_ACCESS_KEY": env["PALHM_S3_SECRET_KEY"],
            "AWS_DEFAULT_REGION": env["PALHM_S3_REGION"], "AWS_CONFIG_FILE": cfg,
            "AWS_SHARED_CREDENTIALS_FILE": cfg, "AWS_EC2_METADATA_DISABLED": "true",
            # Ceph 16 rejects the CRC trailers newer botocore sends by default;
            # palhm's client asks for checksums only where S3 requires them too.
            "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
            "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required"}


def run_awscli(tmp, env, src, aws, key):
    timef = os.path.join(tmp, "time-aws.txt")
    aenv = dict(os.environ, **aws_env(tmp, env))
    t0 = time.monotonic()
    cat = subprocess.Popen(["cat", src], stdout=subprocess.PIPE)
    up = subprocess.Popen(["/usr/bin/time", "-v", "-o", timef, aws, "s3", "cp", "-",
                           "s3://%s/%s" % (BUCKET, key), "--endpoint-url", env["PALHM_S3_ENDPOINT"],
                           "--only-show-errors"], stdin=cat.stdout, env=aenv)
    cat.stdout.close()
    rc = up.wait()
    cat.wait()
    elapsed = time.monotonic() - t0
    if rc != 0:
        sys.exit("aws s3 cp failed with %d" % rc)
    return elapsed, max_rss_mib(timef), cpu_seconds(timef)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--size-mib", type=int, default=2048)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=0, help="palhm upload-concurrency (default: its own)")
    args = ap.parse_args()
    size = args.size_mib * MiB
    env = ceph_env()
    aws = awscli()
    src = source_file(size)
    s3 = s3_client(env)
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    variants = ("palhm", "awscli", "palhm-unsigned")
    results = {v: [] for v in variants}
    empty(s3, "")
    with tempfile.TemporaryDirectory(prefix="palhm-bench-") as tmp:
        for r in range(args.rounds):
            # Rotate who goes first so nobody always gets the warmer server.
            order = variants[r % 3:] + variants[:r % 3]
            for who in order:
                time.sleep(2)
                if who == "awscli":
                    key = "bench/awscli/stream-%d.bin" % r
                    results[who].append(run_awscli(tmp, env, src, aws, key))
                    got = s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
                else:
                    before = set(stored(s3, "bench/palhm/"))
                    results[who].append(run_palhm(tmp, env, src, size, args.concurrency,
                                                  False if who == "palhm-unsigned" else None))
                    new = {k: v for k, v in stored(s3, "bench/palhm/").items() if k not in before}
                    got = sum(v for k, v in new.items() if k.endswith("/stream.bin")) if new else -1
                if got != size:
                    sys.exit("%s stored %d bytes, expected %d" % (who, got, size))
                el, rss, cpu = results[who][-1]
                print("round %d %-14s %7.2f s  %7.1f MiB/s  peak RSS %6.1f MiB  CPU %5.1f s"
                      % (r + 1, who, el, size / MiB / el, rss, cpu), flush=True)
        empty(s3, "")
    print("stream %d MiB to Ceph RGW %s, %d round(s), median time, max RSS:"
          % (args.size_mib, env["PALHM_S3_ENDPOINT"], args.rounds))
    med = {}
    for who in variants:
        med[who] = statistics.median(r[0] for r in results[who])
        print("  %-14s %7.1f MiB/s  peak RSS %6.1f MiB  CPU %5.1f s" % (
            who, size / MiB / med[who], max(r[1] for r in results[who]),
            statistics.median(r[2] for r in results[who])))
    print("  throughput ratio palhm/awscli: %.2f (default settings: payload SHA-256-signed over http, "
          "as awscli)" % (med["awscli"] / med["palhm"]))
    print("  throughput ratio palhm-unsigned/awscli: %.2f (payload-signing: false)"
          % (med["awscli"] / med["palhm-unsigned"]))
    rss = max(r[1] for who in ("palhm", "palhm-unsigned") for r in results[who])
    ok = med["awscli"] / med["palhm"] >= 1.0 and rss < 200
    print("  goal (palhm >= awscli with default settings, palhm peak < 200 MiB): %s" % ("met" if ok else "NOT met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
