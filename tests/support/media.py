"""The media store in tests: a local library over a folder, what is on disk, a real S3 server."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.media.library import MediaLibrary
from bot.media.store import INCOMING, LocalBackend, MediaStore
from storage.db import Sessions
from tests.support.net import free_port


def local_library(root: Path, sessions: Sessions) -> MediaLibrary:
    """A media library keeping files under ``root`` (as ``data_dir/media``)."""
    return MediaLibrary(MediaStore(LocalBackend(root), root / INCOMING), sessions)


def stored_files(root: Path) -> list[Path]:
    """Every file under the media folder (spool files included): what a look at the disk shows."""
    if not root.exists():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file())


def ref_of(data: bytes) -> str:
    """The media store's name for these bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class S3Server:
    """moto's S3 server over real HTTP on 127.0.0.1, with one bucket and test credentials."""

    endpoint_url: str
    bucket: str
    access_key_id: str = "testing-key-id"
    secret_access_key: str = "testing-secret"  # moto accepts any


@contextmanager
def s3_server() -> Iterator[S3Server]:
    """Start moto's ThreadedMotoServer (in this process, a thread) and make a bucket."""
    from moto.server import ThreadedMotoServer

    for name in ("werkzeug", "moto", "botocore", "aiobotocore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        bucket = "ktn-" + secrets.token_hex(4)
        _create_bucket(url, bucket)
        yield S3Server(url, bucket)
    finally:
        server.stop()


def _create_bucket(url: str, bucket: str) -> None:
    """PUT /<bucket> on the server (path-style, the request a client's CreateBucket makes)."""
    import httpx

    response = httpx.put(f"{url}/{bucket}", trust_env=False, timeout=10)
    response.raise_for_status()


def s3_object(server: S3Server, key: str) -> tuple[bytes, str] | None:
    """An object's bytes and content type, read with another client (boto3, synchronous: call
    it in a thread), or None when there is none."""
    import boto3
    from botocore.exceptions import ClientError

    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name="ap-southeast-3",
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
    )
    try:
        response = client.get_object(Bucket=server.bucket, Key=key)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return None
        raise
    return response["Body"].read(), response["ContentType"]


def s3_keys(server: S3Server) -> list[str]:
    """Every object key in the bucket (boto3, synchronous: call it in a thread)."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name="ap-southeast-3",
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
    )
    listed = client.list_objects_v2(Bucket=server.bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))
