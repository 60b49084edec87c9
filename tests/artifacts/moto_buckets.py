"""Makes buckets and odd objects on a moto S3 server for the artifact tests
(tests/integration/artifacts.rs).

    moto_buckets.py ENDPOINT SPEC ...

SPEC is one of:
- `NAME`: a bucket;
- `NAME:deny-delete`: a bucket whose policy denies s3:DeleteObject on every key. moto (5.x)
  enforces it on the bulk delete (POST /?delete, DeleteObjects): each key comes back in the
  answer's Errors as AccessDenied, and stays. (moto ignores bucket policies elsewhere, and
  enforces IAM policies only when its IAM authentication is switched on.)
- `NAME/KEY`: a one-byte object at exactly KEY in an existing bucket, for keys object_store
  cannot write (`a//b`).
"""

import json
import sys

import boto3

endpoint, *specs = sys.argv[1:]
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    aws_access_key_id="test",
    aws_secret_access_key="test",
    region_name="us-east-1",
)
for spec in specs:
    if "/" in spec:
        name, key = spec.split("/", 1)
        s3.put_object(Bucket=name, Key=key, Body=b"x")
        continue
    name, _, flag = spec.partition(":")
    s3.create_bucket(Bucket=name)
    if flag == "deny-delete":
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "NoDeletes",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:DeleteObject",
                    "Resource": f"arn:aws:s3:::{name}/*",
                }
            ],
        }
        s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))
    elif flag:
        sys.exit(f"unknown flag in {spec!r}: use NAME, NAME:deny-delete or NAME/KEY")
