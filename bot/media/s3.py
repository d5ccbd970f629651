"""Stored files in an S3-compatible bucket (AWS S3, MinIO, ...), through aiobotocore.

Imported only when ``[media] backend = "s3"``: aiobotocore and botocore cost tens of MB of
memory a deployment with local files never needs. Keys are ``<prefix><2 hex>/<hex>``; the
credentials come from the environment (``KTN_S3_ACCESS_KEY_ID``, ``KTN_S3_SECRET_ACCESS_KEY``).
With an ``endpoint_url`` (MinIO, a local S3 server) path-style addressing is used.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from bot.media.store import MissingFile, Spooled

NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in NOT_FOUND


class S3Backend:
    """Files as objects in one bucket under a key prefix."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.region = region
        self._credentials = (access_key_id, secret_access_key)
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None

    def __repr__(self) -> str:  # never the credentials
        return f"S3Backend(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def key(self, digest: str) -> str:
        """The object key of a file."""
        return f"{self.prefix}{digest[:2]}/{digest}"

    @property
    def client(self) -> Any:
        """The aiobotocore S3 client (after ``start``)."""
        if self._client is None:
            raise RuntimeError("S3Backend.start() first")
        return self._client

    async def start(self) -> None:
        """Open the client (its connection pool)."""
        key_id, secret = self._credentials
        config = AioConfig(
            s3={"addressing_style": "path" if self.endpoint_url else "auto"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
        )
        stack = contextlib.AsyncExitStack()
        self._client = await stack.enter_async_context(
            get_session().create_client(
                "s3",
                region_name=self.region,
                endpoint_url=self.endpoint_url,
                aws_access_key_id=key_id,
                aws_secret_access_key=secret,
                config=config,
            )
        )
        self._stack = stack

    async def close(self) -> None:
        """Close the client."""
        if self._stack is not None:
            await self._stack.aclose()
        self._stack = None
        self._client = None

    async def keep(self, spooled: Spooled) -> None:
        """Upload the bytes unless an object of that name (hence content) is there already."""
        blob = spooled.blob
        if await self.size(blob.digest) == blob.size:
            return
        extra: dict[str, Any] = {}
        if blob.content_type:
            extra["ContentType"] = blob.content_type
        if spooled.data is not None:
            await self.client.put_object(
                Bucket=self.bucket, Key=self.key(blob.digest), Body=spooled.data, **extra
            )
            return
        assert spooled.path is not None
        handle = await asyncio.to_thread(spooled.path.open, "rb")
        try:
            await self.client.put_object(
                Bucket=self.bucket,
                Key=self.key(blob.digest),
                Body=handle,
                ContentLength=blob.size,
                **extra,
            )
        finally:
            await asyncio.to_thread(handle.close)

    async def _get(self, digest: str) -> Any:
        """The object's GetObject response; MissingFile when the bucket has no such object."""
        try:
            return await self.client.get_object(Bucket=self.bucket, Key=self.key(digest))
        except ClientError as exc:
            if _missing(exc):
                raise MissingFile(digest) from None
            raise

    async def read(self, digest: str) -> bytes:
        """The whole object."""
        response = await self._get(digest)
        async with response["Body"] as body:
            data: bytes = await body.read()
        return data

    async def stream(self, digest: str, chunk_size: int) -> AsyncIterator[bytes]:
        """The object in chunks, as S3 sends it."""
        response = await self._get(digest)
        async with response["Body"] as body:
            async for chunk in body.iter_chunks(chunk_size):
                yield chunk

    async def delete(self, digest: str) -> None:
        """Delete the object (S3 answers the same whether it was there or not)."""
        await self.client.delete_object(Bucket=self.bucket, Key=self.key(digest))

    async def size(self, digest: str) -> int | None:
        """The object's size, or None when there is none."""
        try:
            head = await self.client.head_object(Bucket=self.bucket, Key=self.key(digest))
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return int(head["ContentLength"])
