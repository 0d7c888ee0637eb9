# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way the engine makes a boto3 session: the aws-s3 backend and the
aws-sns boot report MUA both go through `session()`.

Profile fallback (the original's default profile): with no profile, or
profile "default", the "default" profile of the AWS config files is used
when they define it and AWS_PROFILE is not set; otherwise boto3's default
chain (environment, instance role, ...). A named profile that the config
files do not define is an error naming it. Static credentials, when given,
win over any profile.

boto3 is imported on first use (`import_boto3`), never at config parse time.
"""

from __future__ import annotations

import os

from .errors import BackendError, MissingLibraryError


def import_boto3(feature):
    """(boto3, botocore) with botocore.config and botocore.exceptions loaded;
    MissingLibraryError naming `feature` when boto3 is not installed."""
    try:
        import boto3  # pylint: disable=import-outside-toplevel
        import botocore.config  # pylint: disable=import-outside-toplevel
        import botocore.exceptions  # pylint: disable=import-outside-toplevel
        import botocore.session  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise MissingLibraryError("boto3", feature) from None
    return boto3, botocore


def session(boto3, botocore, profile=None, region=None, credentials=None):
    """A boto3 Session for `profile` (None or "default": the fallback above),
    `region` (None: the profile's or the environment's) and `credentials`
    (an object with access_key, secret_key, session_token; None: the
    profile's or boto3's chain). BackendError when a named profile is not
    defined in the AWS config files."""
    kwargs = {}
    if region:
        kwargs["region_name"] = region
    if credentials is not None:
        return boto3.session.Session(aws_access_key_id=credentials.access_key,
                                     aws_secret_access_key=credentials.secret_key,
                                     aws_session_token=credentials.session_token, **kwargs)
    if profile is None or profile == "default":
        available = botocore.session.Session().available_profiles
        if "default" in available and not os.environ.get("AWS_PROFILE"):
            kwargs["profile_name"] = "default"
        return boto3.session.Session(**kwargs)
    try:
        return boto3.session.Session(profile_name=profile, **kwargs)
    except botocore.exceptions.ProfileNotFound:
        raise BackendError("AWS profile %r is not defined in the AWS config files" % profile) from None
