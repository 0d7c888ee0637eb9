# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An SNS topic with an SQS queue subscribed to it, on moto's server, to read
back what was published (the boot report tests).

    sns_sqs.py setup ENDPOINT NAME      create topic NAME and queue NAME, subscribe
                                        the queue; print {"topic_arn", "queue_url"}
    sns_sqs.py receive ENDPOINT QUEUE_URL [--count N] [--wait S]
                                        print the SNS notifications received
                                        (Subject, Message, TopicArn) as JSON

Credentials and region come from the environment (AWS_ACCESS_KEY_ID, ...,
AWS_DEFAULT_REGION; default "testing" and us-east-1 for moto).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import boto3


def _client(service, endpoint):
    return boto3.session.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    ).client(service, endpoint_url=endpoint)


def setup(endpoint, name):
    sns, sqs = _client("sns", endpoint), _client("sqs", endpoint)
    topic_arn = sns.create_topic(Name=name)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return {"topic_arn": topic_arn, "queue_url": queue_url}


def receive(endpoint, queue_url, count, wait):
    sqs = _client("sqs", endpoint)
    out = []
    deadline = time.monotonic() + wait
    while len(out) < count and time.monotonic() < deadline:
        resp = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for m in resp.get("Messages", []):
            note = json.loads(m["Body"])
            out.append({k: note.get(k) for k in ("Type", "Subject", "Message", "TopicArn")})
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("setup")
    p.add_argument("endpoint")
    p.add_argument("name")
    p = sub.add_parser("receive")
    p.add_argument("endpoint")
    p.add_argument("queue_url")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--wait", type=float, default=10)
    args = ap.parse_args(argv)
    if args.cmd == "setup":
        print(json.dumps(setup(args.endpoint, args.name)))
    else:
        print(json.dumps(receive(args.endpoint, args.queue_url, args.count, args.wait)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
