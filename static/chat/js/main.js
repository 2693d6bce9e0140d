// The web chat: the server rendered the first page; these modules take it over and keep it live
// over the same REST API and user stream as mobile clients: one socket for every room, opened
// once per page (connection.js). Nothing typed is lost: every send waits in the outbox
// (outbox.js) until its ack, and a dropped socket resumes by itself from its cursor.
import { api, detail } from "./api.js";
import * as composer from "./composer.js";
import * as connection from "./connection.js";
import { closePopover, popoverOpen } from "./dialogs.js";
import { $, displayName, el, showError } from "./dom.js";
import * as favicon from "./favicon.js";
import { forgetMembers } from "./mentions.js";
import * as notifySettings from "./notify_settings.js";
import * as outbox from "./outbox.js";
import * as panels from "./panels.js";
import * as people from "./people.js";
import * as profile from "./profile.js";
import * as push from "./push.js";
import * as rooms from "./rooms.js";
import * as side from "./side.js";
import { app, emit, on } from "./state.js";
import * as threads from "./threads.js";
import * as timeline from "./timeline.js";
import * as uploads from "./uploads.js";

const typing = new Map(); // user id -> {name, at}
let early = []; // the open room's frames that came before its first page

// "(N) room · Chat" and a badge with N on the tab's icon: N = the unread notifications (the bell's
// count), what one asked to be told of; other rooms' unread messages show on their badges.
function setTitle() {
  const room = app.rooms.get(app.roomId);
  const unread = app.unreadNotices || 0;
  document.title = `${unread ? `(${unread >= 100 ? "99+" : unread}) ` : ""}${room ? `${room.name} · ` : ""}Chat`;
  favicon.showCount(unread);
}

function showPane(roomName) {
  $("room-title").textContent = roomName;
  $("members-button").hidden = $("leave-button").hidden = $("notify-button").hidden = !app.roomId || app.role === null;
  notifySettings.renderButton();
  composer.setEnabled(Boolean(app.roomId) && app.role !== null, roomName);
  document.body.classList.toggle("room-open", Boolean(app.roomId));
}

function hint(text, ...extra) {
  $("messages").replaceChildren(el("p", { class: "hint" }, text, ...extra));
}

function closeRoom({ push = true } = {}) {
  composer.leaveRoom(app.roomId);
  emit("room-closed");
  app.roomId = null;
  app.role = null;
  app.roomOnline = new Set();
  early = [];
  if (push) history.pushState(null, "", "/chat/");
  showPane("Pick a room");
  hint("Pick a room on the left, or create one.");
  rooms.renderRooms();
  rooms.renderOnline();
  setTitle();
}

const narrow = () => window.matchMedia("(max-width: 720px)").matches;

async function openRoom({ roomId, messageId = null, push = true, initial = null, reloadRooms = false, replace = false }) {
  if (reloadRooms) await rooms.loadRooms();
  if (narrow()) side.closeSide(); // a phone shows one thing at a time: the room just asked for
  composer.leaveRoom(app.roomId);
  emit("room-closed");
  forgetMembers();
  typing.clear();
  renderTyping();
  app.roomId = roomId;
  early = [];
  const room = app.rooms.get(roomId);
  app.role = room?.role ?? null;
  app.roomOnline = new Set();
  composer.enterRoom(roomId);
  const url = `/chat/${roomId}/${messageId ? `?message=${encodeURIComponent(messageId)}` : ""}`;
  if (replace) history.replaceState(null, "", url);
  else if (push) history.pushState(null, "", url);
  showPane(room ? room.name : `Room ${roomId}`);
  rooms.renderRooms();
  setTitle();
  let page = initial && !initial.problem ? { results: initial.messages, next: initial.next } : null;
  if (initial?.problem === "join") {
    hint("You are not in this room. ", el("button", { type: "button", class: "link", "data-join": roomId }, "Join it"));
    $("room-title").textContent = initial.room.name;
    return;
  }
  if (!page) {
    const query = messageId ? `around=${encodeURIComponent(messageId)}&limit=50` : "limit=50";
    const found = await api("GET", `/api/messages/${roomId}?${query}`);
    if (app.roomId !== roomId) return;
    if (!found.ok) {
      if (found.status === 403) hint("You are not in this room. ", el("button", { type: "button", class: "link", "data-join": roomId }, "Join it"));
      else if (found.status === 404 && messageId) { openRoom({ roomId, push: false, replace: true }); return; }
      else hint(found.status === 404 ? "No such room." : detail(found, "Messages cannot be loaded right now."));
      composer.setEnabled(false);
      return;
    }
    page = found.data;
  }
  const highlight = messageId || initial?.message_id || null;
  timeline.reset(roomId, page, { lastReadSeq: room?.last_read_seq ?? 0, highlight, around: Boolean(highlight) });
  timeline.render({ toBottom: !highlight });
  if (highlight) timeline.scrollToHighlight();
  // The stream's frames for this room that came while its page loaded (the page may hold them).
  for (const frame of early.splice(0)) onRoomMessage(frame);
  markRead(); // seen down to its newest message (a short room never scrolls to say so)
  loadPresence(roomId);
  if (!narrow()) $("message-input").focus();
}

// Who of the open room is online (the stream tells of people, not of rooms: a change re-reads it).
async function loadPresence(roomId) {
  const found = await api("GET", `/api/rooms/${roomId}/presence`);
  if (!found.ok || roomId !== app.roomId) return;
  app.roomOnline = new Set(found.data.results.map((user) => user.id));
  for (const id of app.roomOnline) app.online.add(id);
  rooms.renderOnline();
}

let presenceTimer = null;
function presenceChanged(user, status) {
  if (status === "online") app.online.add(user.id);
  else { app.online.delete(user.id); app.roomOnline.delete(user.id); }
  rooms.renderOnline();
  clearTimeout(presenceTimer);
  if (app.roomId) presenceTimer = setTimeout(() => loadPresence(app.roomId), 500);
}

// A message in any room: the room's badge and head; the open room's timeline.
function onRoomMessage(frame) {
  const message = frame.message;
  const isNew = frame.type === "message.new";
  const room = app.rooms.get(frame.room_id);
  // Counted once however often it arrives (a replay after the page's own read): by seq.
  if (room && isNew && !message.parent_id && message.seq > (room.last_seq || 0)) {
    room.last_seq = message.seq;
    if (frame.room_id !== app.roomId && message.author?.id !== app.me.id && message.seq > (room.last_read_seq || 0)) {
      room.unread_count = (room.unread_count || 0) + 1;
      rooms.renderRooms();
    }
  }
  if (frame.room_id !== app.roomId) return;
  if (timeline.view.roomId !== app.roomId) { early.push(frame); return; }
  const changed = timeline.arrived(message, isNew);
  if (changed) threads.render();
  if (isNew) markRead();
}

function roomChanged(changed) {
  const known = app.rooms.get(changed.id);
  app.rooms.set(changed.id, { ...known, ...changed });
  if (changed.id === app.roomId) {
    app.role = changed.role ?? app.role;
    showPane(changed.name);
  }
  rooms.renderRooms();
}

function roomLost(roomId, reason) {
  app.rooms.delete(roomId);
  if (roomId === app.roomId) {
    app.role = null;
    showPane($("room-title").textContent);
    const why = reason === "left" ? "You left this room." : reason === "banned" ? "You were banned from this room." : "You were removed from this room.";
    showError($("composer-error"), why);
  }
  rooms.renderRooms();
}

function resync() {
  rooms.loadRooms();
  panels.loadNotificationCount();
  if (app.roomId) openRoom({ roomId: app.roomId, push: false });
}

// --- live frames ----------------------------------------------------------------------------------
function onFrame(frame) {
  switch (frame.type) {
    case "connection.open":
      app.online.add(app.me.id);
      app.roomOnline.add(app.me.id);
      rooms.renderOnline();
      break;
    case "connection.closed":
      app.online.delete(app.me.id);
      app.roomOnline.delete(app.me.id);
      rooms.renderOnline();
      timeline.render();
      break;
    case "connection.reset":
      resync();
      break;
    case "message.new":
    case "message.updated":
      onRoomMessage(frame);
      break;
    case "message.ack": {
      outbox.done(frame.client_id);
      const room = app.rooms.get(frame.room_id);
      if (room && !frame.message.parent_id) room.last_seq = Math.max(room.last_seq || 0, frame.message.seq);
      if (frame.room_id === app.roomId && timeline.view.roomId === app.roomId) {
        timeline.upsert(frame.message);
        timeline.render({ toBottom: !frame.message.parent_id });
        threads.render();
      }
      break;
    }
    case "sync.done":
      markRead();
      break;
    case "typing":
      if (frame.room_id !== app.roomId) break;
      if (frame.state === "start") typing.set(frame.user.id, { name: displayName(frame.user), at: Date.now() });
      else typing.delete(frame.user.id);
      renderTyping();
      break;
    case "presence":
      presenceChanged(frame.user, frame.status);
      break;
    case "room.added":
    case "room.updated":
      roomChanged(frame.room);
      break;
    case "room.removed":
      roomLost(frame.room_id, frame.reason);
      break;
    case "read": {
      const room = app.rooms.get(frame.room_id);
      if (!room) break;
      room.last_read_seq = Math.max(room.last_read_seq || 0, frame.seq);
      room.unread_count = frame.unread_count;
      rooms.renderRooms();
      break;
    }
    case "notification":
      panels.noticeArrived(frame.notification);
      break;
    case "error":
      if (frame.client_id && outbox.get(frame.client_id)) outbox.failed(frame.client_id, frame.detail);
      else if (frame.code !== "invalid_cursor" && frame.code !== "cursor_expired") showError($("composer-error"), frame.detail);
      break;
    default:
      break;
  }
}

function renderTyping() {
  const now = Date.now();
  for (const [id, entry] of typing) if (now - entry.at > 8000) typing.delete(id);
  const names = [...typing.values()].map((entry) => entry.name);
  $("typing").textContent = names.length ? `${names.join(", ")} ${names.length === 1 ? "is" : "are"} typing…` : "";
}

let readTimer = null;
function markRead() {
  clearTimeout(readTimer);
  if (document.visibilityState !== "visible" || timeline.view.hasNewer) return;
  const roomId = app.roomId;
  readTimer = setTimeout(() => {
    const list = $("messages");
    if (roomId !== app.roomId || list.scrollHeight - list.scrollTop - list.clientHeight > 48) return;
    const seq = timeline.view.lastSeq;
    const room = app.rooms.get(roomId);
    if (seq > 0 && room && seq > (room.last_read_seq || 0)) {
      api("POST", `/api/rooms/${roomId}/read`, { seq });
      room.last_read_seq = seq;
    }
    if (room && room.unread_count) { room.unread_count = 0; rooms.renderRooms(); }
    panels.roomSeen(roomId); // its "message"/"dm" notices are read with it
  }, 500);
}

// --- wiring ---------------------------------------------------------------------------------------
function install() {
  side.install();
  timeline.install();
  composer.install();
  threads.install();
  rooms.install();
  panels.install();
  people.install();
  profile.install();
  notifySettings.install();
  push.install();
  uploads.install();
  on("open-room", openRoom);
  on("close-room", () => closeRoom());
  on("message", (message) => { timeline.upsert(message); timeline.render(); threads.render(); });
  on("redraw", () => { timeline.render(); threads.render(); });
  on("outbox", ({ roomId, flush }) => {
    if (roomId === app.roomId) { timeline.render({ toBottom: true }); threads.render(); }
    if (flush) connection.flush();
  });
  on("unread-changed", setTitle);
  // A notice for the room one is reading at its newest message is read with it (panels.roomSeen).
  on("notice-arrived", (notice) => { if (notice.room_id === app.roomId) markRead(); });
  on("at-bottom", markRead);
  on("side-closed", () => timeline.settle());
  on("image-loaded", () => timeline.settle());
  $("back-to-rooms").addEventListener("click", () => closeRoom());
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    if (popoverOpen()) { closePopover(); return; }
    if (!$("side").hidden) side.closeSide();
  });
  window.addEventListener("popstate", () => {
    const match = location.pathname.match(/^\/chat\/(\d+)\/?$/);
    const messageId = new URLSearchParams(location.search).get("message");
    if (match) openRoom({ roomId: match[1], messageId, push: false }); else closeRoom({ push: false });
  });
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible" && app.roomId) markRead(); });
  setInterval(renderTyping, 2000);
}

install();
app.rooms = new Map(app.config.rooms.map((room) => [room.id, room]));
rooms.renderRooms();
panels.loadNotificationCount();
connection.start(app.config.cursor, onFrame);
if (app.config.room_id) {
  const messageId = new URLSearchParams(location.search).get("message");
  openRoom({ roomId: app.config.room_id, messageId, push: false, initial: app.config.opened });
} else {
  closeRoom({ push: false });
}
document.body.dataset.ready = "true"; // the page is live (tests wait for this)
