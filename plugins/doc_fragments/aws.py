# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The AWS options shared by the modules that reach an aws-s3 backend,
    named and documented like amazon.aws's common options."""

    DOCUMENTATION = r"""
options:
  profile:
    description:
      - The AWS profile (from the AWS config and credentials files on the managed host) used for the
        C(aws-s3) backend.
      - Overrides C(profile) in the task's C(backend-param).
      - When neither sets a profile, or the C(default) profile is asked for but not defined, boto3's default
        credential chain is used (environment variables such as E(AWS_ACCESS_KEY_ID), shared files,
        instance or container roles).
      - Mutually exclusive with O(access_key) and O(secret_key).
    type: str
    aliases: [aws_profile]
  region:
    description:
      - The AWS region of the bucket, for example V(eu-west-1).
      - Overrides C(region) in the task's C(backend-param); defaults to the profile's or the environment's region.
    type: str
    aliases: [aws_region]
  endpoint_url:
    description:
      - URL of an S3-compatible endpoint to use instead of AWS, for example V(http://127.0.0.1:7480) for a
        Ceph RADOS Gateway or MinIO.
      - Overrides C(endpoint-url) in the task's C(backend-param).
    type: str
    aliases: [aws_endpoint_url]
  access_key:
    description:
      - AWS access key ID. Overrides C(access-key) in the task's C(backend-param).
      - Must be given together with O(secret_key).
    type: str
    aliases: [aws_access_key_id, aws_access_key]
  secret_key:
    description:
      - AWS secret access key. Never logged or returned.
      - Must be given together with O(access_key).
    type: str
    aliases: [aws_secret_access_key, aws_secret_key]
  session_token:
    description:
      - AWS session token for temporary credentials. Never logged or returned.
      - Needs O(access_key) and O(secret_key).
    type: str
    aliases: [aws_session_token]
notes:
  - The AWS options only matter for tasks whose backend is C(aws-s3); such tasks need the Python library
    C(boto3) on the managed host.
  - The options override the matching keys of the task's C(backend-param); keys not set here keep their
    values from the PALHM configuration.
requirements:
  - boto3 >= 1.26.0 on the managed host, for the C(aws-s3) backend
"""
