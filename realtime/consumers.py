"""`WS /api/ws/{room_id}`: the room WebSocket of docs/websocket.md.

It parses frames and authenticates; writes go through the same services as REST. Delivery is
ordered by the room's `version`: live signals from the channel layer are hints, and any gap
(a late or lost signal, a resume with `?since=`) is filled from the store in ascending version.
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

from accounts import revocations
from accounts.authentication import forget_user
from accounts.models import User
from accounts.revocations import Revocation
from accounts.serializers import user_payload
from accounts.ws_auth import SocketAuthError, SocketIdentity, authenticate_socket
from core import broadcast
from core.blocking import off_loop, off_loop_post
from core.errors import ApiError, Forbidden, NotFound, as_api_error
from core.metrics import SOCKETS_FELL_BEHIND, SOCKETS_OPEN
from messaging import services, store
from realtime import frames, presence, user_limits
from realtime.client_frames import Refused, parse_client_frame
from realtime.flood import FloodGate
from realtime.hub import hub
from realtime.outbox import Close, Outbox
from realtime.selectors import changes_as_frames, room_is_small, users_by_id
from rooms.models import Membership
from rooms.selectors import membership_get, room_require_member

logger = logging.getLogger(__name__)

CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NO_ROOM = 4404
CLOSE_RATE_LIMITED = 4429
CLOSE_BAD_REQUEST = 4400
CLOSE_FELL_BEHIND = 4408  # the outgoing queue passed WS_SEND_QUEUE_BYTES: reconnect with ?since=
CLOSE_UNAVAILABLE = 4503

TYPING_STATES = ("start", "stop")


class RoomConsumer(AsyncWebsocketConsumer):
    room_id: int
    user: User
    last_version: int = 0  # highest room version delivered to this socket, in order
    access_epoch: int = 0  # revocations after this epoch may concern this socket
    push_presence: bool = False  # small rooms only (WS_PRESENCE_PUSH_LIMIT)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' own dispatch hops to a thread before every handler to close stale database
        # connections: one thread round trip per delivered frame, the fan-out bottleneck. Every
        # database call here goes through off_loop (Channels' database_sync_to_async), which does that.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        # Accept first: a close code (4401, 4403, ...) can only travel on an open socket.
        await self.accept()
        self._outbox = Outbox(
            self._write_text,
            self._write_close,
            limit_bytes=settings.WS_SEND_QUEUE_BYTES,
            stall_seconds=settings.WS_SEND_STALL_SECONDS,
            on_overflow=self._fell_behind,
        )
        self._catching_up: asyncio.Task[None] | None = None
        self._catch_up_to = 0
        self._delivery = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._joined = False
        self._gate = FloodGate(settings.WS_FLOOD_RATE, settings.WS_FLOOD_BURST)
        # While > 0 (connecting, or own sends awaiting their ack), live frames wait in `_held`.
        self._holds = 1
        self._held: list[tuple[int, str]] = []
        self._resumed = False
        try:
            self.access_epoch, identity, membership = await off_loop(_admit)(
                self.scope, self.scope["url_route"]["kwargs"]["room_id"]
            )
        except SocketAuthError as exc:
            self._close(code=exc.close_code, reason=exc.reason)
            return
        except NotFound:
            self._close(code=CLOSE_NO_ROOM, reason="no such room")
            return
        except Forbidden:
            self._close(code=CLOSE_FORBIDDEN, reason="not a member")
            return
        except Exception as exc:  # noqa: BLE001 - a backing service down: say so, do not crash
            logger.warning("websocket connect failed: %r", exc)
            self._close(code=CLOSE_UNAVAILABLE, reason="service unavailable")
            return
        self.user = identity.user
        self.room_id = membership.room_id
        if settings.RATELIMIT_ENABLE:
            self._counted = await user_limits.socket_allowed(self.user.pk, self.channel_name)
            if not self._counted:
                limit = settings.WS_MAX_SOCKETS_PER_USER
                await self._send_frame(frames.error("too_many_sockets", f"At most {limit} open sockets per user."))
                self._close(code=CLOSE_RATE_LIMITED, reason="too many sockets")
                return
        since = self._query_since()
        if since == -1:
            await self._send_frame(frames.error("invalid_since", "since must be a non-negative integer"))
            self._close(code=CLOSE_BAD_REQUEST, reason="invalid since")
            return

        try:
            await broadcast.subscribe(broadcast.user_group(self.user.pk), self.channel_name)
        except Exception as exc:  # noqa: BLE001 - Redis down: membership is re-checked on catch-up
            logger.warning("channel layer unavailable on connect: %r", exc)
        self._joined = True
        SOCKETS_OPEN.inc()
        # Subscribed before reading the store: nothing committed after this point can be missed.
        await hub().register(self, [self.room_id])
        if identity.expires_at is not None:
            self._tasks.append(asyncio.get_running_loop().create_task(self._close_at(identity.expires_at)))

        try:
            head = await off_loop(store.room_heads)([self.room_id])
            head_version = head[self.room_id].version if self.room_id in head else 0
            self._resumed = True  # from here on the hub's tick may catch this socket up
            if since is None:
                self.last_version = head_version
            else:
                self.last_version = min(since, head_version)
                await self.catch_up(head_version)
                await self._send_frame(frames.sync_done(self.last_version))
        except Exception as exc:  # noqa: BLE001 - MongoDB away: the client resumes from what it got
            logger.warning("websocket resume failed: %r", exc)
            self._close(code=CLOSE_UNAVAILABLE, reason="service unavailable")
            return
        await self._release_hold()
        await self._announce_presence()

    async def _release_hold(self) -> None:
        self._holds -= 1
        if not self._holds:
            held, self._held = sorted(self._held), []
            for version, text in held:
                await self.deliver_message_text(version, text)

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "_outbox"):
            self._outbox.stop()  # from here on `closing`: no frame, no catch-up
        for task in getattr(self, "_tasks", []):
            task.cancel()
        if getattr(self, "_counted", False):
            await user_limits.socket_closed(self.user.pk, self.channel_name)
        if not getattr(self, "_joined", False):
            return
        SOCKETS_OPEN.dec()
        await hub().unregister(self, [self.room_id])
        try:
            await broadcast.unsubscribe(broadcast.user_group(self.user.pk), self.channel_name)
        except Exception as exc:  # noqa: BLE001 - a stale subscription only costs traffic
            logger.debug("user group unsubscribe failed: %r", exc)
        await presence.depart(self.user, self.channel_name)
        try:
            went_offline = bool(await presence.backend().leave(self.room_id, self.user.pk, self.channel_name))
            if went_offline and getattr(self, "push_presence", False):
                await presence.publish_presence(self.room_id, self.user, "offline")
        except Exception:
            logger.warning("presence leave failed", exc_info=logger.isEnabledFor(logging.DEBUG))

    # --- client -> server ------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not getattr(self, "_joined", False) or self._outbox.closing:
            return  # frames that were queued behind a close are not processed
        # This socket's own bucket first (no round trip), then the user's over every process.
        if settings.RATELIMIT_ENABLE and not (self._gate.allow() and await user_limits.frame_allowed(self.user.pk)):
            self._close(code=CLOSE_RATE_LIMITED, reason="too many frames")
            return
        frame = parse_client_frame(text_data, settings.WS_MAX_FRAME_BYTES)
        if isinstance(frame, Refused):
            await self._send_frame(frame.error)
            return
        handler = {
            "message.send": self._on_send,
            "typing": self._on_typing,
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
                logger.exception("websocket frame failed")
                err = ApiError("Internal error; the frame was not processed.", code="server_error", status=500)
            if err.code in ("room_not_found", "not_a_member"):
                await self._send_frame(frames.error(err.code, err.detail, client_id))
                self._close(code=CLOSE_FORBIDDEN, reason="no longer a member")
                return
            await self._send_frame(frames.error(err.code, err.detail, client_id))

    async def _on_send(self, frame: dict[str, Any]) -> None:
        if not isinstance(frame.get("client_id"), str):
            # Required here (REST may omit it): a resend after a reconnect must find the first post.
            raise ApiError(
                "message.send needs a client_id string.", code="invalid", fields={"client_id": ["A string."]}
            )
        if "body" not in frame:
            raise ApiError("message.send needs a body.", code="invalid", fields={"body": ["Required."]})
        self._holds += 1  # the ack goes before this socket's own message.new (docs/websocket.md's order)
        try:
            # On a pool of their own: posts from many sockets wait in one group commit together.
            result = await off_loop_post(services.message_post)(
                user=self.user,
                room_id=self.room_id,
                body=frame["body"],
                parent_id=frame.get("parent_id"),
                client_id=frame["client_id"],
            )
            await self._send_frame(frames.message_ack(frame["client_id"], result.message))
        finally:
            await self._release_hold()

    async def _on_typing(self, frame: dict[str, Any]) -> None:
        state = frame.get("state")
        if state not in TYPING_STATES:
            raise ApiError("typing state must be start or stop.", code="invalid", fields={"state": ["start|stop"]})
        # Membership is checked on every action, not only on connect (a removal signal may be lost).
        await off_loop(room_require_member)(self.user, self.room_id)
        typing_state: frames.TypingState = "start" if state == "start" else "stop"
        await broadcast.publish_async(
            broadcast.room_group(self.room_id), frames.typing(user_payload(self.user), typing_state)
        )

    async def _on_ping(self, frame: dict[str, Any]) -> None:
        await self._send_frame(frames.pong())

    # --- server -> client ------------------------------------------------------------------

    async def access_revoked(self, event: dict[str, Any]) -> None:
        """The channel layer's news of accounts/revocations.record (the hub's poll is the fallback)."""
        room_id = event.get("room_id")
        if room_id is None:
            forget_user(self.user.pk)  # this process's REST requests see the change at once too
        self.revoke(Revocation(epoch=0, user_id=self.user.pk, room_id=None if room_id is None else int(room_id)))

    async def user_logged(self, event: dict[str, Any]) -> None:
        """The user's log moved (accounts/user_log.py): news for the user stream, not a room socket."""

    def revoke(self, revocation: Revocation) -> None:
        """Close if `revocation` ends this socket's access: 4403 for this room, 4401 for the account."""
        if self._outbox.closing or not revocation.covers(self.user.pk, self.room_id):
            return
        if revocation.room_id is None:
            frame, close = (
                frames.error("access_revoked", "Sign in again."),
                Close(CLOSE_NOT_AUTHENTICATED, "signed out"),
            )
        else:
            frame = frames.error("not_a_member", "You are no longer a member of this room.")
            close = Close(CLOSE_FORBIDDEN, "removed from room")
        logger.info("closing socket of user %s in room %s: access revoked", self.user.pk, self.room_id)
        self._outbox.cut(broadcast.frame_text(frame), close)

    async def on_room_event(self, room_id: int, event: dict[str, Any]) -> None:
        """An event of this socket's room from the hub: a message change, or typing/presence."""
        if event.get("kind") in (frames.MESSAGE_NEW, frames.MESSAGE_UPDATED):
            await self.deliver_message_text(int(event["version"]), event["text"])
        elif event.get("sender") != str(self.user.pk):  # own typing/presence is no news
            self._outbox.offer(event["text"])

    def check_head(self, room_id: int, head: store.RoomHead) -> bool:
        """The hub's tick: behind the room's head means a signal was lost; catch up."""
        if not self._resumed:
            # Connecting: last_version is not known yet (0), and a catch-up now would replay the
            # whole room to a client resuming from far ahead. The resume reads the head itself.
            return False
        if head.version > self.last_version:
            self.schedule_catch_up(head.version)
            return True
        return False

    async def deliver_message_text(self, version: int, text: str) -> None:
        """A live `message.*` frame from the hub: sent if it is the next version, else a gap fill."""
        if self._holds:
            self._held.append((version, text))
            return
        if version <= self.last_version:
            return  # already delivered by a replay or a catch-up
        if version == self.last_version + 1 and not self._delivery.locked():
            self.last_version = version  # the lock is free: nothing else is delivering
            self._outbox.offer(text)
            return
        # A gap (an earlier signal is late or lost) or a catch-up in progress: the store decides,
        # in a task of its own so the hub's fan-out to other sockets never waits on a query.
        self.schedule_catch_up(version)

    def schedule_catch_up(self, upto_version: int) -> None:
        """Catch up to at least `upto_version`: one task per socket, however many gaps arrive."""
        if self._outbox.closing:
            return
        self._catch_up_to = max(self._catch_up_to, upto_version)
        if self._catching_up is None or self._catching_up.done():
            self._catching_up = asyncio.get_running_loop().create_task(self._catch_up_while_behind())
            self._catching_up.add_done_callback(_log_failure)

    async def _catch_up_while_behind(self) -> None:
        while self._catch_up_to > self.last_version and not self._outbox.closing:
            await self.catch_up(self._catch_up_to)

    async def catch_up(self, upto_version: int) -> None:
        """Send every change in (last_version, upto_version] from the store, ascending by version."""
        async with self._delivery:
            if upto_version <= self.last_version or self._outbox.closing:
                return
            if await off_loop(membership_get)(self.user, self.room_id) is None:
                self._close(code=CLOSE_FORBIDDEN, reason="removed from room")
                return
            known = self.last_version
            while self.last_version < upto_version:
                window_end = min(upto_version, self.last_version + settings.WS_REPLAY_WINDOW)
                changed = await off_loop(changes_as_frames)(self.room_id, self.last_version, window_end, known)
                for frame, version in changed:
                    await self._send_frame(frame)
                    self.last_version = version
                # Versions whose message changed again later are not in this window: skip past them.
                self.last_version = window_end

    async def _announce_presence(self) -> None:
        # In big rooms a join storm would cost members squared frames: there presence is polled
        # (GET /api/rooms/{id}/presence) instead of pushed.
        self.push_presence = await off_loop(room_is_small)(self.room_id)
        await presence.arrive(self.user, self.channel_name)
        try:
            backend = presence.backend()
            came_online = bool(await backend.join(self.room_id, self.user.pk, self.channel_name))
            if not self.push_presence:
                return
            online = await backend.online(self.room_id)
        except Exception as exc:  # noqa: BLE001 - presence is best effort; messages are not
            logger.warning("presence unavailable: %r", exc)
            return
        users = await off_loop(users_by_id)(online - {self.user.pk})
        for user in users:
            await self._send_frame(frames.presence(user_payload(user), "online"))
        if came_online:
            await presence.publish_presence(self.room_id, self.user, "online")

    async def _close_at(self, moment: datetime) -> None:
        await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))
        await self._send_frame(frames.error("token_expired", "The access token expired; reconnect with a new one."))
        self._close(code=CLOSE_NOT_AUTHENTICATED, reason="token expired")

    def _query_since(self) -> int | None:
        """None when absent, -1 when malformed, else the version to resume after."""
        values = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("since")
        if not values:
            return None
        try:
            since = int(values[0])
        except ValueError:
            return -1
        return since if since >= 0 else -1

    async def _send_frame(self, frame: Mapping[str, object]) -> None:
        await self._outbox.put(broadcast.frame_text(frame))

    def _close(self, code: int, reason: str) -> None:
        """Close after the frames already queued (an error frame before its close, say)."""
        self._outbox.close(Close(code, reason))

    def _fell_behind(self) -> Close:
        logger.info("socket of user %s in room %s fell behind; closing it", getattr(self, "user", None), self.room_id)
        SOCKETS_FELL_BEHIND.inc()
        return Close(CLOSE_FELL_BEHIND, "fell behind; reconnect with since")

    async def _write_text(self, text: str) -> None:
        await self.send(text_data=text)

    async def _write_close(self, close: Close) -> None:
        await self.close(code=close.code, reason=close.reason)


def _admit(scope: dict[str, Any], room_id: Any) -> tuple[int, SocketIdentity, Membership]:
    """Who connects to which room, in one trip off the loop. The revocation epoch is read first:
    any revocation committed after it reaches this socket through the hub (realtime/hub.py)."""
    epoch = revocations.current_epoch()
    identity = authenticate_socket(scope)
    return epoch, identity, room_require_member(identity.user, room_id)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.debug("catch-up on a closing socket failed: %r", task.exception())
