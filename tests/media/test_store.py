"""The media store's interface on both backends: a folder, and an S3-compatible server.

The S3 backend talks to moto's S3 server (``moto[server]``: a real HTTP server on 127.0.0.1,
started in this process as a thread) through the real aiobotocore client. Not tested here: AWS
itself, MinIO or any other S3 implementation.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.media.s3 import S3Backend
from bot.media.store import INCOMING, LocalBackend, MediaStore, MissingFile, TooLarge
from tests.support.media import S3Server, s3_object, s3_server, stored_files

PHOTO = b"\xff\xd8\xff\xe0" + os.urandom(3000)


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


@pytest.fixture(params=["local", "s3"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, s3: S3Server
) -> AsyncIterator[MediaStore]:
    if request.param == "local":
        backend: LocalBackend | S3Backend = LocalBackend(tmp_path / "media")
    else:
        backend = S3Backend(
            s3.bucket,
            prefix=f"{tmp_path.name}/",
            endpoint_url=s3.endpoint_url,
            region="ap-southeast-3",
            access_key_id=s3.access_key_id,
            secret_access_key=s3.secret_access_key,
        )
    store = MediaStore(backend, tmp_path / "media" / INCOMING)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


async def chunks(data: bytes, size: int = 700) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_put_get_open_size_exists_delete(store: MediaStore, tmp_path: Path) -> None:
    blob = await store.put(PHOTO, "image/jpeg")
    assert blob.ref == "sha256:" + hashlib.sha256(PHOTO).hexdigest()
    assert (blob.size, blob.content_type) == (len(PHOTO), "image/jpeg")
    assert await store.get(blob.ref) == PHOTO
    assert b"".join([chunk async for chunk in store.open(blob.ref, 1000)]) == PHOTO
    assert await store.exists(blob.ref) and await store.size(blob.ref) == len(PHOTO)

    await store.delete(blob.ref)
    assert not await store.exists(blob.ref) and await store.size(blob.ref) is None
    with pytest.raises(MissingFile):
        await store.get(blob.ref)
    await store.delete(blob.ref)  # deleting what is gone is no error


async def test_a_stream_is_named_by_its_content_and_stored_once(
    store: MediaStore, tmp_path: Path
) -> None:
    streamed = await store.put(chunks(PHOTO), "image/jpeg")
    again = await store.put(PHOTO, "image/jpeg")
    assert streamed == again and await store.get(streamed.ref) == PHOTO
    spool = tmp_path / "media" / INCOMING
    assert stored_files(spool) == []  # the spool file moved (or was uploaded and removed)


async def test_over_the_limit_nothing_is_stored(store: MediaStore, tmp_path: Path) -> None:
    with pytest.raises(TooLarge):
        await store.put(chunks(PHOTO), "image/jpeg", limit=1024)
    with pytest.raises(TooLarge):
        await store.put(PHOTO, "image/jpeg", limit=1024)
    ref = "sha256:" + hashlib.sha256(PHOTO).hexdigest()
    assert not await store.exists(ref)
    assert stored_files(tmp_path / "media") == []  # not even half a spool file


async def test_refs_that_are_not_the_stores_are_refused(store: MediaStore) -> None:
    for ref in ("/etc/passwd", "sha256:../../x", "sha256:" + "g" * 64, "AgACAgUAAx000001"):
        with pytest.raises(ValueError, match="not a media store ref"):
            await store.get(ref)


async def test_s3_objects_are_in_the_bucket_under_the_prefix_with_their_type(
    s3: S3Server, tmp_path: Path
) -> None:
    backend = S3Backend(
        s3.bucket,
        prefix="ktn/media/",
        endpoint_url=s3.endpoint_url,
        region="ap-southeast-3",
        access_key_id=s3.access_key_id,
        secret_access_key=s3.secret_access_key,
    )
    store = MediaStore(backend, tmp_path / INCOMING)
    await store.start()
    try:
        blob = await store.put(chunks(PHOTO), "image/jpeg")
    finally:
        await store.close()
    digest = blob.ref.removeprefix("sha256:")
    # Read back with another client (boto3, synchronous): the object is where the key says.
    found = await asyncio.to_thread(s3_object, s3, f"ktn/media/{digest[:2]}/{digest}")
    assert found == (PHOTO, "image/jpeg")


def test_the_s3_client_library_is_not_loaded_unless_configured(tmp_path: Path) -> None:
    """Idle memory (P5): a deployment with local files never imports aiobotocore/botocore."""
    script = (
        "import sys, asyncio\n"
        "import bot.app\n"
        "from bot.config import Settings\n"
        "from bot.media.library import make_library\n"
        f"make_library(Settings(data_dir={str(tmp_path)!r}), None)\n"
        "print(sorted(m for m in ('aiobotocore', 'botocore') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
    )
    assert result.stdout.strip() == "[]"
