"""The bytes of stored files, named by their content: ``sha256:<hex>``.

``MediaStore`` is the small interface the rest of ktn-bot uses: ``put`` (bytes or a stream of
chunks, with an optional size limit) returns the file's ``Blob`` (its ref, size and content
type); ``get`` reads it whole, ``open`` streams it, ``delete``, ``exists`` and ``size`` do what
they say. Naming by content makes a put idempotent (a retried download, the same photo sent
twice) and lets two reports share one file.

Underneath is a ``Backend``: ``LocalBackend`` keeps files under ``<data_dir>/media/<2 hex>/<hex>``;
``bot.media.s3.S3Backend`` keeps them in an S3-compatible bucket so workers on several hosts share
them (imported only when configured). A stream is hashed while it is written to a spool file
under ``<data_dir>/media/.incoming`` (never held in memory whole), then moved (local) or
uploaded (S3) under its name.

``put`` is ``spool`` then ``keep``; ``bot.media.library`` records the file in the database between
the two, so that a file is never deleted while a message that brought it is being handled.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

PREFIX = "sha256:"
CHUNK = 64 * 1024
INCOMING = ".incoming"

Source = bytes | bytearray | memoryview | AsyncIterable[bytes]


class TooLarge(Exception):
    """More bytes than the limit: nothing was stored (the spool is removed)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than {limit} bytes")
        self.limit = limit


class MissingFile(LookupError):
    """The ref names no stored file."""


@dataclass(frozen=True, slots=True)
class Blob:
    """A stored file: its ref (``sha256:<hex>``), size in bytes and content type."""

    ref: str
    size: int
    content_type: str | None = None

    @property
    def digest(self) -> str:
        """The hex SHA-256 of the bytes."""
        return digest_of(self.ref)


def digest_of(ref: str) -> str:
    """The hex digest in a ref; ValueError for anything that is not a store ref."""
    digest = ref.removeprefix(PREFIX)
    if not ref.startswith(PREFIX) or len(digest) != 64 or digest.strip("0123456789abcdef"):
        raise ValueError("not a media store ref")
    return digest


@dataclass(slots=True)
class Spooled:
    """Bytes hashed and ready to keep: in memory (``data``) or in a spool file (``path``)."""

    blob: Blob
    data: bytes | None = None
    path: Path | None = None

    def discard(self) -> None:
        """Remove the spool file, if it is still there (after ``keep`` it has usually moved)."""
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.path = None


class Backend(Protocol):
    """Where the bytes are: a folder, an S3 bucket. Names are hex SHA-256 digests."""

    async def start(self) -> None:
        """Connect (if there is anything to connect)."""

    async def close(self) -> None:
        """Release connections."""

    async def keep(self, spooled: Spooled) -> None:
        """Store the spooled bytes under their digest (nothing to do when already stored)."""

    async def read(self, digest: str) -> bytes:
        """The whole file; ``MissingFile`` when it is not stored."""

    def stream(self, digest: str, chunk_size: int) -> AsyncIterator[bytes]:
        """The file in chunks; ``MissingFile`` (on first iteration) when it is not stored."""

    async def delete(self, digest: str) -> None:
        """Remove the file; nothing happens when it is not there."""

    async def size(self, digest: str) -> int | None:
        """The stored file's size, or None when it is not stored."""


class MediaStore:
    """Files by content hash, over one backend (see the module's docstring)."""

    def __init__(self, backend: Backend, spool_dir: Path) -> None:
        self.backend = backend
        self.spool_dir = spool_dir

    async def start(self) -> None:
        """Open the backend."""
        await asyncio.to_thread(self.spool_dir.mkdir, parents=True, exist_ok=True)
        await self.backend.start()

    async def close(self) -> None:
        """Close the backend."""
        await self.backend.close()

    async def put(
        self, source: Source, content_type: str | None = None, *, limit: int | None = None
    ) -> Blob:
        """Store bytes (or a stream of chunks) and return the file; ``TooLarge`` over
        ``limit`` bytes, with nothing stored."""
        spooled = await self.spool(source, content_type, limit=limit)
        try:
            await self.keep(spooled)
        finally:
            spooled.discard()
        return spooled.blob

    async def spool(
        self, source: Source, content_type: str | None = None, *, limit: int | None = None
    ) -> Spooled:
        """Hash the bytes; a stream goes to a spool file as it comes. ``TooLarge`` over
        ``limit`` (the spool removed)."""
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
            if limit is not None and len(data) > limit:
                raise TooLarge(limit)
            blob = Blob(PREFIX + hashlib.sha256(data).hexdigest(), len(data), content_type)
            return Spooled(blob, data=data)
        path = self.spool_dir / f"{secrets.token_hex(12)}.part"
        digest = hashlib.sha256()
        size = 0
        try:
            handle = await asyncio.to_thread(_open_new, path)
            try:
                async for chunk in source:
                    size += len(chunk)
                    if limit is not None and size > limit:
                        raise TooLarge(limit)
                    digest.update(chunk)
                    await asyncio.to_thread(handle.write, chunk)
            finally:
                await asyncio.to_thread(handle.close)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            raise
        return Spooled(Blob(PREFIX + digest.hexdigest(), size, content_type), path=path)

    async def keep(self, spooled: Spooled) -> None:
        """Store spooled bytes under their name."""
        await self.backend.keep(spooled)

    async def get(self, ref: str) -> bytes:
        """The file's bytes; ``MissingFile`` when it is not stored."""
        return await self.backend.read(digest_of(ref))

    def open(self, ref: str, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        """The file's bytes in chunks (for a web response)."""
        return self.backend.stream(digest_of(ref), chunk_size)

    async def delete(self, ref: str) -> None:
        """Remove the file (nothing happens when it is not there)."""
        await self.backend.delete(digest_of(ref))

    async def exists(self, ref: str) -> bool:
        """Whether the file is stored."""
        return await self.size(ref) is not None

    async def size(self, ref: str) -> int | None:
        """The stored file's size in bytes, or None."""
        return await self.backend.size(digest_of(ref))


def _open_new(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("xb")


class LocalBackend:
    """Files in a folder: ``<root>/<first 2 hex>/<hex>``, written to a spool file and renamed
    into place (a reader never sees half a file)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, digest: str) -> Path:
        """Where a file is kept."""
        return self.root / digest[:2] / digest

    async def start(self) -> None:
        """Make the folder."""
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)

    async def close(self) -> None:
        """Nothing to release."""

    async def keep(self, spooled: Spooled) -> None:
        """Rename the spool file into place (or write the bytes), atomically."""
        await asyncio.to_thread(self._keep, spooled)

    def _keep(self, spooled: Spooled) -> None:
        target = self.path_of(spooled.blob.digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        if spooled.path is not None:
            os.replace(spooled.path, target)
            spooled.path = None
            return
        assert spooled.data is not None
        if target.exists() and target.stat().st_size == len(spooled.data):
            return  # the same name is the same content
        partial = target.with_name(f"{target.name}.{secrets.token_hex(6)}.part")
        partial.write_bytes(spooled.data)
        os.replace(partial, target)

    async def read(self, digest: str) -> bytes:
        """The whole file."""
        try:
            return await asyncio.to_thread(self.path_of(digest).read_bytes)
        except FileNotFoundError:
            raise MissingFile(digest) from None

    async def stream(self, digest: str, chunk_size: int) -> AsyncIterator[bytes]:
        """The file in chunks, read off the event loop."""
        try:
            handle = await asyncio.to_thread(self.path_of(digest).open, "rb")
        except FileNotFoundError:
            raise MissingFile(digest) from None
        try:
            while chunk := await asyncio.to_thread(handle.read, chunk_size):
                yield chunk
        finally:
            # Closed here, not in a thread: a response cut off (the fetcher went away, the
            # server stopping) closes this generator where it can no longer await.
            handle.close()

    async def delete(self, digest: str) -> None:
        """Unlink the file."""
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self.path_of(digest).unlink)

    async def size(self, digest: str) -> int | None:
        """The file's size, or None."""
        try:
            return (await asyncio.to_thread(self.path_of(digest).stat)).st_size
        except FileNotFoundError:
            return None
