"""The media store with its bookkeeping: files are kept while something needs them.

``put`` records the file in the database (``storage.media``) with a hold before its bytes are
stored: a message's download is safe until the inbound seam ``release``s it after the core's
commit. Then a file that the core did not keep and that no report, broadcast or draft refers
to is deleted at once; the leader's ``sweep`` deletes what is left over (a crash between
download and release, a link's file after its grace period, an expired draft's photos). A file
is deleted only inside a transaction that has locked its row and found nothing referring to it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from datetime import datetime, timedelta

from bot.config import Settings
from bot.media.store import INCOMING, Backend, Blob, LocalBackend, MediaStore, Source
from storage import media
from storage.db import Sessions
from storage.types import utcnow

log = logging.getLogger(__name__)


def short(ref: str) -> str:
    """A ref as logs show it: enough to find the file, no more."""
    return ref.removeprefix("sha256:")[:12]


class MediaLibrary:
    """Stored files and what the database knows of them (see the module's docstring)."""

    def __init__(
        self, store: MediaStore, sessions: Sessions, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.store = store
        self.sessions = sessions
        self.clock = clock

    async def start(self) -> None:
        """Open the store."""
        await self.store.start()

    async def close(self) -> None:
        """Close the store."""
        await self.store.close()

    async def put(
        self,
        source: Source,
        content_type: str | None = None,
        *,
        limit: int | None = None,
        hold: bool = True,
        owner_id: int | None = None,
    ) -> Blob:
        """Store a file; ``hold``: a message that is being handled needs it (``release`` it
        afterwards), else it is kept for the grace period unless something refers to it;
        ``owner_id``: made for this person about themselves (erasing them deletes it).
        ``bot.media.store.TooLarge`` over ``limit`` bytes, with nothing stored."""
        spooled = await self.store.spool(source, content_type, limit=limit)
        blob = spooled.blob
        try:
            async with self.sessions() as session:
                await media.hold(
                    session,
                    blob.ref,
                    size=blob.size,
                    content_type=content_type,
                    now=self.clock(),
                    holds=1 if hold else 0,
                    owner_id=owner_id,
                )
                await session.commit()
            await self.store.keep(spooled)
        finally:
            spooled.discard()
        return blob

    async def release(
        self, refs: Sequence[str], kept: Collection[str] = (), *, held: bool = True
    ) -> int:
        """Let go of the holds ``put`` took (one per ref listed; ``held=False``: of files a
        draft let go, which hold nothing); a file the core did not keep (``kept``) and that
        nothing refers to is deleted. Returns how many were deleted."""
        deleted = 0
        for ref in refs:
            try:
                async with self.sessions() as session:
                    blob = await (
                        media.release(session, ref) if held else media.locked(session, ref)
                    )
                    if (
                        blob is not None
                        and blob.holds == 0
                        and ref not in kept
                        and not await media.referenced(session, ref)
                    ):
                        await self.store.delete(ref)
                        await media.forget(session, ref)
                        deleted += 1
                    await session.commit()
            except Exception as exc:  # the sweep deletes it later if nothing needs it
                log.warning("media %s not released: %s", short(ref), type(exc).__name__)
        return deleted

    async def sweep(
        self,
        grace: timedelta,
        *,
        idle_before: datetime | None = None,
        expiring_states: Sequence[str] = (),
        page: int = media.BATCH,
    ) -> int:
        """Delete files untouched for ``grace`` that nothing refers to (report drafts in
        ``expiring_states`` idle since ``idle_before`` count as expired). Returns the count."""
        before = self.clock() - grace
        deleted = 0
        after: str | None = None
        while True:
            async with self.sessions() as session:
                candidates = await media.unreferenced_before(session, before, page, after=after)
                live = (
                    await media.draft_refs(
                        session, idle_before=idle_before, expiring_states=expiring_states
                    )
                    if candidates
                    else set()
                )
            for ref in candidates:
                if ref in live:
                    continue
                try:
                    async with self.sessions() as session:
                        if await media.collectable(
                            session,
                            ref,
                            before,
                            idle_before=idle_before,
                            expiring_states=expiring_states,
                        ):
                            await self.store.delete(ref)
                            await media.forget(session, ref)
                            deleted += 1
                        await session.commit()
                except Exception as exc:  # one file that cannot go does not stop the rest
                    log.warning("media %s not swept: %s", short(ref), type(exc).__name__)
            if len(candidates) < page:
                return deleted
            after = candidates[-1]

    async def read(self, ref: str) -> bytes:
        """A stored file's bytes (``bot.media.store.MissingFile`` when it is gone)."""
        return await self.store.get(ref)

    def open(self, ref: str) -> AsyncIterator[bytes]:
        """A stored file's bytes in chunks."""
        return self.store.open(ref)

    async def stat(self, ref: str) -> Blob | None:
        """What the database knows of a stored file, or None."""
        async with self.sessions() as session:
            row = await media.stat(session, ref)
        return None if row is None else Blob(row.ref, row.size, row.content_type)

    async def file_id(self, ref: str, channel: str, bot: str, kind: str) -> str | None:
        """A channel's own id for the file on one bot (Telegram's file_id), if known."""
        async with self.sessions() as session:
            return await media.file_id(session, ref, channel, bot, kind)

    async def remember_file_id(
        self, ref: str, channel: str, bot: str, kind: str, file_id: str
    ) -> None:
        """Keep a channel's id for the file (after an upload or a user's message)."""
        try:
            async with self.sessions() as session:
                await media.remember_file_id(
                    session,
                    ref=ref,
                    channel=channel,
                    bot=bot,
                    kind=kind,
                    file_id=file_id,
                    now=self.clock(),
                )
                await session.commit()
        except Exception as exc:  # only a cache: the next send uploads again
            log.warning("file id of media %s not kept: %s", short(ref), type(exc).__name__)

    async def forget_file_id(self, ref: str, channel: str, bot: str, kind: str) -> None:
        """Forget an id the channel refused."""
        async with self.sessions() as session:
            await media.forget_file_id(session, ref, channel, bot, kind)
            await session.commit()


def make_library(settings: Settings, sessions: Sessions) -> MediaLibrary:
    """The media library the settings describe (``[media] backend``); the S3 client library
    is imported only here, and only when configured."""
    root = settings.data_dir / "media"
    backend: Backend
    configured = settings.media
    if configured.backend == "s3":
        from bot.media.s3 import S3Backend

        assert configured.bucket is not None  # checked by bot.config.media_problems
        key_id, secret = settings.s3_access_key_id, settings.s3_secret_access_key
        backend = S3Backend(
            configured.bucket,
            prefix=configured.prefix,
            endpoint_url=configured.endpoint_url,
            region=configured.region,
            access_key_id=key_id.get_secret_value() if key_id else None,
            secret_access_key=secret.get_secret_value() if secret else None,
        )
    else:
        backend = LocalBackend(root)
    return MediaLibrary(MediaStore(backend, root / INCOMING), sessions)
