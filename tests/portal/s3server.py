"""A real S3-speaking HTTP server (moto's) on a loopback port, for the storage contract tests."""

from __future__ import annotations

import socket

import boto3

_server = None
_endpoint = ""


def s3_endpoint() -> str:
    """Start the server once per test process and return its endpoint URL."""
    global _server, _endpoint
    if _server is None:
        from moto.server import ThreadedMotoServer

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        _server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        _server.start()
        _endpoint = f"http://127.0.0.1:{port}"
    return _endpoint


def s3_storage_settings(bucket: str) -> dict:
    """Create the bucket on the server and return a STORAGES entry for django-storages."""
    endpoint = s3_endpoint()
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106
    ).create_bucket(Bucket=bucket)
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint,
            "region_name": "us-east-1",
            "access_key": "test",
            "secret_key": "test",
            "default_acl": "private",
            "file_overwrite": False,
        },
    }


def raw_objects(bucket: str) -> dict[str, bytes]:
    """Return every object's stored bytes, as an attacker with bucket access would see them."""
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint(),
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106
    )
    out = {}
    for item in client.list_objects_v2(Bucket=bucket).get("Contents", []):
        out[item["Key"]] = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return out


def put_raw(bucket: str, key: str, data: bytes) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint(),
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106
    )
    client.put_object(Bucket=bucket, Key=key, Body=data)
