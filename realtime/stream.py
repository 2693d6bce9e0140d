"""`WS /api/ws`: the user stream of docs/websocket.md, one socket for every room of the user.

Per room it delivers message changes in ascending version exactly as the room socket does (live
signals are hints; gaps are filled from the store). Across rooms it keeps a cursor
(realtime/cursor.py) whose size grows with the rooms changed in the last minute, not with the rooms
the user is in: a room the socket has heard nothing of since the cursor's stamp needs no entry, and
a resume reads only the rooms changed since (the counters' stamp index). Everything else the user
sees (rooms added, changed or lost, read markers, notifications) comes from the user's log
(accounts/user_log.py), in position order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from accounts import revocations, user_log
from accounts.authentication import forget_user
from accounts.models import User
from accounts.revocations import Revocation
from accounts.serializers import user_payload
from accounts.ws_auth import SocketAuthError, SocketIdentity, authenticate_socket
from core import broadcast
from core.blocking import off_loop, off_loop_post
from core.errors import ApiError, InvalidInput, as_api_error
from core.metrics import SOCKETS_FELL_BEHIND, SOCKETS_OPEN
from messaging import services, store
from realtime import cursor as cursors
from realtime import frames, presence, stream_reads, user_limits
from realtime.client_frames import Refused, parse_client_frame
from realtime.consumers import (
    CLOSE_BAD_REQUEST,
    CLOSE_FELL_BEHIND,
    CLOSE_NOT_AUTHENTICATED,
    CLOSE_RATE_LIMITED,
    CLOSE_UNAVAILABLE,
    TYPING_STATES,
)
from realtime.flood import FloodGate
from realtime.hub import hub, now_ms
from realtime.outbox import Close, Outbox
from realtime.selectors import co_member_ids, presence_room_ids, users_by_id
from rooms import services as room_services
from rooms.selectors import room_require_member

logger = logging.getLogger(__name__)


class UserStreamConsumer(AsyncWebsocketConsumer):
    user: User
    access_epoch: int = 0

    async def dispatch(self, message: dict[str, Any]) -> None:
        # As in realtime/consumers.py: no thread hop per delivered frame.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        await self.accept()
        self._outbox = Outbox(
            self._write_text,
            self._write_close,
            limit_bytes=settings.WS_SEND_QUEUE_BYTES,
            stall_seconds=settings.WS_SEND_STALL_SECONDS,
            on_overflow=self._fell_behind,
        )
        self._joined = False
        self._tasks: list[asyncio.Task[None]] = []
        self._gate = FloodGate(settings.WS_FLOOD_RATE, settings.WS_FLOOD_BURST)
        self._margin_ms = int(settings.STREAM_CURSOR_MARGIN_SECONDS * 1000)
        # What the client has (realtime/cursor.py): every change stamped before `_stamp`; for the
        # rooms in `_known`, everything up to that version; the user's log up to `_position`.
        self._stamp = 0
        self._position = 0
        self._rooms: set[int] = set()
        self._known: dict[int, int] = {}
        self._delivered_stamp: dict[int, int] = {}  # of the last change sent, per room in `_known`
        self._recent: dict[int, int] = {}  # the cursor's rooms: delivered a change stamped >= _stamp
        self._catch_up_to: dict[int, int] = {}
        self._catching_up: dict[int, asyncio.Task[None]] = {}
        self._room_locks: dict[int, asyncio.Lock] = {}
        self._log_lock = asyncio.Lock()
        self._log_task: asyncio.Task[None] | None = None
        self._log_wanted = 0
        # While > 0 (connecting and replaying, or own sends awaiting their ack) live room events wait.
        self._holds = 1
        self._held: list[tuple[int, dict[str, Any]]] = []
        self._presence: dict[int, tuple[str, int]] = {}  # user id -> (status sent, its sequence)
        self._presence_live = False  # from just before the snapshot on
        try:
            self.access_epoch, identity = await off_loop(_admit)(self.scope)
        except SocketAuthError as exc:
            self._close(exc.close_code, exc.reason)
            return
        except Exception as exc:  # noqa: BLE001 - a backing service down: say so, do not crash
            logger.warning("user stream connect failed: %r", exc)
            self._close(CLOSE_UNAVAILABLE, "service unavailable")
            return
        self.user = identity.user
        if settings.RATELIMIT_ENABLE:
            self._counted = await user_limits.socket_allowed(self.user.pk, self.channel_name)
            if not self._counted:
                limit = settings.WS_MAX_SOCKETS_PER_USER
                await self._send_frame(frames.error("too_many_sockets", f"At most {limit} open sockets per user."))
                self._close(CLOSE_RATE_LIMITED, "too many sockets")
                return
        resume = self._query_cursor()
        if isinstance(resume, Refused):
            await self._send_frame(resume.error)
            self._close(CLOSE_BAD_REQUEST, "invalid cursor")
            return
        try:
            await broadcast.subscribe(broadcast.user_group(self.user.pk), self.channel_name)
        except Exception as exc:  # noqa: BLE001 - Redis down: the hub's tick reads the log instead
            logger.warning("channel layer unavailable on connect: %r", exc)
        self._joined = True
        SOCKETS_OPEN.inc()
        try:
            start = await off_loop(stream_reads.stream_start)(self.user.pk)
            self._rooms = set(start.room_ids)
            # Subscribed before reading the store: nothing committed after this point can be missed.
            await hub().register(self, start.room_ids, stream=True)
            if identity.expires_at is not None:
                self._tasks.append(asyncio.get_running_loop().create_task(self._close_at(identity.expires_at)))
            if resume is None:
                await self._start_fresh(start)
            elif not await self._resume(resume, start):
                return
        except Exception as exc:  # noqa: BLE001 - a store away: the client resumes from what it got
            logger.warning("user stream start failed: %r", exc)
            self._close(CLOSE_UNAVAILABLE, "service unavailable")
            return
        await self._send_frame(frames.stream_sync_done(self._cursor()))
        await self._release_hold()
        await self._tell_presence()

    async def _tell_presence(self) -> None:
        """Who of the people in the user's small rooms is online now; then the others hear of the user."""
        self._presence_live = True
        rooms: list[int] | None = None
        try:
            rooms = await off_loop(presence_room_ids)(self.user.pk)  # read once, for both directions
            people = await off_loop(co_member_ids)(self.user.pk, rooms) if rooms else []
            online = await presence.backend().online_among(presence.ANYWHERE, people)
        except Exception as exc:  # noqa: BLE001 - presence is best effort; messages are not
            logger.warning("presence unavailable: %r", exc)
            online = set()
        for user in await off_loop(users_by_id)(online):
            if user.pk not in self._presence:
                self._presence[user.pk] = ("online", 0)
                await self._send_frame(frames.presence(user_payload(user), "online"))
        await presence.arrive(self.user, self.channel_name, rooms)

    async def _start_fresh(self, start: stream_reads.Start) -> None:
        """No cursor: the client starts from now. Every room is known at its head (one lookup)."""
        read_ms = now_ms()
        heads = await off_loop(store.room_heads)(start.room_ids)
        self._position = start.position
        self._stamp = read_ms - self._margin_ms
        for room_id in start.room_ids:
            head = heads.get(room_id)
            self._known[room_id] = head.version if head is not None else 0
            self._delivered_stamp[room_id] = head.stamp if head is not None else 0
            if head is not None and head.stamp >= self._stamp:
                self._recent[room_id] = head.version

    async def _resume(self, resume: cursors.Cursor, start: stream_reads.Start) -> bool:
        """Replay everything after the cursor: the user's log, then the rooms changed since its stamp."""
        if resume.position > start.position:
            await self._send_frame(frames.error("invalid_cursor", "That cursor was not made for this account."))
            self._close(CLOSE_BAD_REQUEST, "invalid cursor")
            return False
        self._stamp = resume.stamp
        self._position = resume.position
        for room_id, version in resume.versions.items():
            if room_id in self._rooms:
                self._known[room_id] = version
                self._recent[room_id] = version
                self._delivered_stamp[room_id] = resume.stamp  # at or after it: kept in the cursor
        if not await self._read_log(replay=True):
            return False
        read_ms = now_ms()
        changed = await off_loop(stream_reads.changed_rooms)(set(self._rooms), self._stamp)
        for room_id, head in sorted(changed.items()):
            await self._catch_up_room(room_id, head.version)
            if self._known.get(room_id) == head.version:
                # The head is the client's last change of the room: its stamp is known exactly now.
                self._delivered_stamp[room_id] = head.stamp
        self._advance(read_ms - self._margin_ms)
        return True

    # --- the cursor ------------------------------------------------------------------------------

    def _cursor(self) -> str:
        return cursors.Cursor(stamp=self._stamp, position=self._position, versions=self._recent).encode()

    def _advance(self, stamp: int) -> None:
        """Every change stamped before `stamp` has been sent: the cursor forgets rooms quiet since."""
        if stamp <= self._stamp:
            return
        self._stamp = stamp
        for room_id in [r for r in self._recent if self._delivered_stamp.get(r, 0) < stamp]:
            del self._recent[room_id]

    def tick_floor(self) -> int | None:
        return None if self._holds or not self._joined else self._stamp

    def checked(self, floor_ms: int, read_ms: int) -> None:
        """The hub's tick found this socket behind in no room changed since `floor_ms`."""
        if self._holds or not self._joined or floor_ms > self._stamp or any(self._catch_up_to.values()):
            return
        if any(not task.done() for task in self._catching_up.values()):
            return
        self._advance(read_ms - self._margin_ms)

    def check_head(self, room_id: int, head: store.RoomHead) -> bool:
        if room_id not in self._rooms:
            return False
        if self._holds:
            return True
        known = self._known.get(room_id)
        if known is None:
            if head.stamp < self._stamp:
                return False
            self._schedule_catch_up(room_id, head.version)
            return True
        if head.version > known:
            self._schedule_catch_up(room_id, head.version)
            return True
        return room_id in self._catch_up_to

    def check_log(self, position: int) -> None:
        if position > self._position:
            self._schedule_log_read(position)

    # --- room events -----------------------------------------------------------------------------

    async def on_room_event(self, room_id: int, event: dict[str, Any]) -> None:
        if self._holds:
            self._held.append((room_id, event))
            return
        if room_id not in self._rooms or self._outbox.closing:
            return
        kind = event.get("kind")
        if kind == frames.PRESENCE:
            return  # a room socket's presence in that room; the stream's comes by on_presence
        if kind not in (frames.MESSAGE_NEW, frames.MESSAGE_UPDATED):
            if event.get("sender") != str(self.user.pk):  # own typing is no news
                self._outbox.offer(_with_fields(event["text"], room_id), room_id)
            return
        version = int(event["version"])
        stamp, prior = int(event.get("stamp", 0)), int(event.get("prior_stamp", 0))
        known = self._known.get(room_id)
        if known is None:
            if self._room_lock(room_id).locked():
                self._schedule_catch_up(room_id, version)
                return
            if stamp < self._stamp:  # the client has it (it has everything stamped before)
                self._note_delivered(room_id, version, stamp)
                return
            if prior >= self._stamp:  # the change before it may be missing: the store decides
                self._schedule_catch_up(room_id, version)
                return
        elif version <= known:
            return
        elif version != known + 1 or self._room_lock(room_id).locked():
            self._schedule_catch_up(room_id, version)
            return
        self._note_delivered(room_id, version, stamp)
        self._outbox.offer(_with_fields(event["text"], room_id, self._cursor()), room_id)

    def on_presence(self, event: dict[str, Any]) -> None:
        """A person who shares a room with the user came online or went offline (from the hub, once
        per process however many rooms they share). Older announcements that arrive late lose."""
        sender, status, sequence = event.get("sender"), str(event.get("status")), int(event.get("sequence", 0))
        if not self._presence_live or self._outbox.closing or sender is None or sender == str(self.user.pk):
            return  # while connecting: the snapshot after sync.done tells the state
        user_id = int(sender)
        last_status, last_sequence = self._presence.get(user_id, ("", 0))
        if sequence <= last_sequence or status == last_status:
            return
        self._presence[user_id] = (status, sequence)
        self._outbox.offer(event["text"])

    def _note_delivered(self, room_id: int, version: int, stamp: int) -> None:
        self._known[room_id] = version
        self._delivered_stamp[room_id] = stamp
        if stamp >= self._stamp:
            self._recent[room_id] = version
        else:
            self._recent.pop(room_id, None)

    def _room_lock(self, room_id: int) -> asyncio.Lock:
        lock = self._room_locks.get(room_id)
        if lock is None:
            lock = self._room_locks[room_id] = asyncio.Lock()
        return lock

    def _schedule_catch_up(self, room_id: int, upto: int) -> None:
        if self._outbox.closing:
            return
        self._catch_up_to[room_id] = max(self._catch_up_to.get(room_id, 0), upto)
        task = self._catching_up.get(room_id)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(self._catch_up_while_behind(room_id))
            task.add_done_callback(_log_failure)
            self._catching_up[room_id] = task

    async def _catch_up_while_behind(self, room_id: int) -> None:
        while not self._outbox.closing and room_id in self._rooms:
            upto = self._catch_up_to.get(room_id, 0)
            known = self._known.get(room_id)
            if known is not None and upto <= known:
                break
            await self._catch_up_room(room_id, upto)
        self._catch_up_to.pop(room_id, None)

    async def _catch_up_room(self, room_id: int, upto: int) -> None:
        """Send the room's changes after what the client has, up to `upto`, ascending by version."""
        async with self._room_lock(room_id):
            known = self._known.get(room_id)
            stamp = self._stamp
            if known is None:
                # The client has every change stamped before the cursor's stamp and none after.
                first = await off_loop(store.first_version_stamped_since)(room_id, stamp)
                if first is None or first > upto:
                    self._skip_to(room_id, upto)  # nothing at or below `upto` is new to the client
                    return
                after = first - 1

                def is_new(message: store.StoredMessage) -> bool:
                    return message.created_stamp >= stamp
            else:
                after = known

                def is_new(message: store.StoredMessage) -> bool:
                    return message.created_version > known

            while after < upto and room_id in self._rooms and not self._outbox.closing:
                window_end = min(upto, after + settings.WS_REPLAY_WINDOW)
                changes = await off_loop(stream_reads.room_changes)(room_id, after, window_end, is_new)
                for change in changes:
                    if room_id not in self._rooms:
                        return
                    if change.version <= self._known.get(room_id, -1):
                        continue  # sent live while this window was read
                    self._note_delivered(room_id, change.version, change.stamp)
                    frame = {"type": change.kind, "room_id": str(room_id), "message": change.message}
                    await self._send_frame({**frame, "cursor": self._cursor()}, room_id)
                after = window_end
                # Versions whose message changed again later are not in this window: skip past them.
                self._skip_to(room_id, window_end)

    def _skip_to(self, room_id: int, version: int) -> None:
        """The client has, in effect, every change up to `version`: the ones not sent were overwritten
        by later changes of the same messages, which it gets in their place."""
        if room_id in self._rooms and self._known.get(room_id, -1) < version:
            self._known[room_id] = version
            if room_id in self._recent:
                self._recent[room_id] = version

    async def _release_hold(self) -> None:
        self._holds -= 1
        if not self._holds:
            held, self._held = self._held, []
            held.sort(key=lambda item: (item[0], int(item[1].get("version") or 0)))
            for room_id, event in held:
                await self.on_room_event(room_id, event)

    # --- the user's log --------------------------------------------------------------------------

    async def user_logged(self, event: dict[str, Any]) -> None:
        """The channel layer's news of a new entry in the user's log (the hub's tick is the fallback)."""
        position = event.get("position")
        if isinstance(position, int) and position > self._position:
            self._schedule_log_read(position)

    def _schedule_log_read(self, position: int) -> None:
        if not self._joined or self._outbox.closing:
            return
        self._log_wanted = max(self._log_wanted, position)
        if self._log_task is None or self._log_task.done():
            self._log_task = asyncio.get_running_loop().create_task(self._read_log_while_behind())
            self._log_task.add_done_callback(_log_failure)

    async def _read_log_while_behind(self) -> None:
        while self._log_wanted > self._position and not self._outbox.closing:
            before = self._position
            await self._read_log(replay=False)
            if self._position == before:
                break  # nothing readable yet (the entry's transaction is still committing)

    async def _read_log(self, *, replay: bool) -> bool:
        """Send the frames of the log entries after `_position`; False if they are no longer kept."""
        async with self._log_lock:
            while not self._outbox.closing:
                entries = await off_loop(user_log.entries_after)(self.user.pk, self._position)
                if not entries:
                    return True
                if replay and entries[0].position != self._position + 1:
                    await self._send_frame(
                        frames.error("cursor_expired", "That cursor is too old; reload and connect without one.")
                    )
                    self._close(CLOSE_BAD_REQUEST, "cursor expired")
                    return False
                replay = False
                for log_frame in await off_loop(stream_reads.log_frames)(self.user, entries):
                    await self._apply_log_frame(log_frame)
                self._position = max(self._position, entries[-1].position)
                if len(entries) < user_log.READ_BATCH:
                    return True
            return True

    async def _apply_log_frame(self, log_frame: stream_reads.LogFrame) -> None:
        room_id = log_frame.room_id
        self._position = max(self._position, log_frame.position)
        if log_frame.kind == frames.ROOM_ADDED and room_id is not None:
            await self._send_frame({"type": log_frame.kind, **log_frame.body, "cursor": self._cursor()})
            if room_id not in self._rooms:
                await self._gain_room(room_id, log_frame.start_version)
            return
        if log_frame.kind == frames.ROOM_REMOVED and room_id is not None:
            await self._lose_room(room_id)
        elif log_frame.kind == frames.ROOM_UPDATED and room_id is not None and room_id not in self._rooms:
            await self._gain_room(room_id, None)  # a room the socket had not heard of yet
        await self._send_frame({"type": log_frame.kind, **log_frame.body, "cursor": self._cursor()})

    async def _gain_room(self, room_id: int, start_version: int | None) -> None:
        self._rooms.add(room_id)
        await hub().listen(self, [room_id])
        head = await off_loop(store.head_version)(room_id)
        base = head if start_version is None else min(start_version, head)
        self._known[room_id] = base
        self._delivered_stamp[room_id] = 0
        if head > base:
            self._schedule_catch_up(room_id, head)

    async def _lose_room(self, room_id: int) -> None:
        if room_id not in self._rooms:
            return
        self._drop_room(room_id)
        await hub().unlisten(self, [room_id])

    def _drop_room(self, room_id: int) -> None:
        """No more frames of the room, from now: queued ones are dropped too."""
        self._rooms.discard(room_id)
        self._known.pop(room_id, None)
        self._recent.pop(room_id, None)
        self._delivered_stamp.pop(room_id, None)
        self._catch_up_to.pop(room_id, None)
        task = self._catching_up.pop(room_id, None)
        if task is not None:
            task.cancel()
        self._outbox.drop(room_id)

    # --- lost access -----------------------------------------------------------------------------

    async def access_revoked(self, event: dict[str, Any]) -> None:
        room_id = event.get("room_id")
        if room_id is None:
            forget_user(self.user.pk)
        self.revoke(Revocation(epoch=0, user_id=self.user.pk, room_id=None if room_id is None else int(room_id)))

    def revoke(self, revocation: Revocation) -> None:
        """A room lost: its frames stop at once, and the log's room.removed says why. The account
        lost: close 4401."""
        if self._outbox.closing or revocation.user_id != self.user.pk:
            return
        if revocation.room_id is None:
            logger.info("closing user stream of %s: access revoked", self.user.pk)
            self._outbox.cut(
                broadcast.frame_text(frames.error("access_revoked", "Sign in again.")),
                Close(CLOSE_NOT_AUTHENTICATED, "signed out"),
            )
            return
        if revocation.room_id in self._rooms:
            self._drop_room(revocation.room_id)
            unlisten = asyncio.get_running_loop().create_task(hub().unlisten(self, [revocation.room_id]))
            unlisten.add_done_callback(_log_failure)
            self._schedule_log_read(self._position + 1)

    # --- client -> server ------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not getattr(self, "_joined", False) or self._outbox.closing:
            return
        if settings.RATELIMIT_ENABLE and not (self._gate.allow() and await user_limits.frame_allowed(self.user.pk)):
            self._close(CLOSE_RATE_LIMITED, "too many frames")
            return
        frame = parse_client_frame(text_data, settings.WS_MAX_FRAME_BYTES)
        if isinstance(frame, Refused):
            await self._send_frame(frame.error)
            return
        handler = {
            "message.send": self._on_send,
            "typing": self._on_typing,
            "read": self._on_read,
            "ping": self._on_ping,
        }.get(frame["type"])
        if handler is None:
            await self._send_frame(frames.error("unknown_type", f"Unknown frame type {frame['type'][:50]!r}."))
            return
        client_id = frame.get("client_id") if isinstance(frame.get("client_id"), str) else None
        try:
            await handler(frame)
        except Exception as exc:
            err = as_api_error(exc)
            if err is None:
                logger.exception("user stream frame failed")
                err = ApiError("Internal error; the frame was not processed.", code="server_error", status=500)
            await self._send_frame(frames.error(err.code, err.detail, client_id))

    async def _on_send(self, frame: dict[str, Any]) -> None:
        if not isinstance(frame.get("client_id"), str):
            raise InvalidInput("message.send needs a client_id string.", fields={"client_id": ["A string."]})
        if "body" not in frame:
            raise InvalidInput("message.send needs a body.", fields={"body": ["Required."]})
        room_id = _room_id(frame)
        self._holds += 1  # the ack goes before this socket's own message.new
        try:
            result = await off_loop_post(services.message_post)(
                user=self.user,
                room_id=room_id,
                body=frame["body"],
                parent_id=frame.get("parent_id"),
                client_id=frame["client_id"],
                attachments=frame.get("attachments"),
            )
            await self._send_frame(frames.stream_message_ack(room_id, frame["client_id"], result.message))
        finally:
            await self._release_hold()

    async def _on_typing(self, frame: dict[str, Any]) -> None:
        state = frame.get("state")
        if state not in TYPING_STATES:
            raise InvalidInput("typing state must be start or stop.", fields={"state": ["start|stop"]})
        room_id = _room_id(frame)
        await off_loop(room_require_member)(self.user, room_id)
        typing_state: frames.TypingState = "start" if state == "start" else "stop"
        await broadcast.publish_async(
            broadcast.room_group(room_id), frames.typing(user_payload(self.user), typing_state)
        )

    async def _on_read(self, frame: dict[str, Any]) -> None:
        seq = frame.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**53:
            raise InvalidInput("read needs seq, a non-negative integer.", fields={"seq": ["A non-negative integer."]})
        await off_loop(room_services.mark_read)(user=self.user, room_id=_room_id(frame), seq=seq)

    async def _on_ping(self, frame: dict[str, Any]) -> None:
        await self._send_frame(frames.pong())

    # --- plumbing --------------------------------------------------------------------------------

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "_outbox"):
            self._outbox.stop()
        for task in [*getattr(self, "_tasks", []), *getattr(self, "_catching_up", {}).values()]:
            task.cancel()
        if getattr(self, "_counted", False):
            await user_limits.socket_closed(self.user.pk, self.channel_name)
        if not getattr(self, "_joined", False):
            return
        SOCKETS_OPEN.dec()
        await hub().unregister(self, list(self._rooms))
        await presence.depart(self.user, self.channel_name)
        try:
            await broadcast.unsubscribe(broadcast.user_group(self.user.pk), self.channel_name)
        except Exception as exc:  # noqa: BLE001 - a stale subscription only costs traffic
            logger.debug("user group unsubscribe failed: %r", exc)

    def _query_cursor(self) -> cursors.Cursor | Refused | None:
        values = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("cursor")
        if not values:
            return None
        try:
            return cursors.decode(values[0])
        except cursors.InvalidCursor:
            return Refused(frames.error("invalid_cursor", "That is not a cursor this server gave out."))

    async def _close_at(self, moment: datetime) -> None:
        await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))
        await self._send_frame(frames.error("token_expired", "The access token expired; reconnect with a new one."))
        self._close(CLOSE_NOT_AUTHENTICATED, "token expired")

    async def _send_frame(self, frame: Mapping[str, object], room_id: int | None = None) -> None:
        await self._outbox.put(broadcast.frame_text(frame), room_id)

    def _close(self, code: int, reason: str) -> None:
        self._outbox.close(Close(code, reason))

    def _fell_behind(self) -> Close:
        logger.info("user stream of %s fell behind; closing it", getattr(self, "user", None))
        SOCKETS_FELL_BEHIND.inc()
        return Close(CLOSE_FELL_BEHIND, "fell behind; reconnect with cursor")

    async def _write_text(self, text: str) -> None:
        await self.send(text_data=text)

    async def _write_close(self, close: Close) -> None:
        await self.close(code=close.code, reason=close.reason)


def _admit(scope: dict[str, Any]) -> tuple[int, SocketIdentity]:
    """The revocation epoch first: any revocation committed after it reaches the socket via the hub."""
    epoch = revocations.current_epoch()
    return epoch, authenticate_socket(scope)


def _room_id(frame: dict[str, Any]) -> int:
    raw = frame.get("room_id")
    if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).isdigit() or len(str(raw)) > 18:
        raise InvalidInput("room_id must name a room.", fields={"room_id": ["A room id."]})
    return int(raw)


def _with_fields(text: str, room_id: int, cursor: str | None = None) -> str:
    """A room frame serialised once by its publisher, given this stream's `room_id` (and `cursor`):
    spliced onto the text, not decoded and encoded again per socket."""
    extra = f',"room_id":"{room_id}"' if cursor is None else f',"room_id":"{room_id}","cursor":"{cursor}"'
    return text[:-1] + extra + "}"


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.debug("user stream task failed: %r", task.exception())
