// The side panel's lists: search results, notifications and a message's edit history. Search
// results and notifications go to the message itself (/chat/<room>/?message=<id>).
import { api, detail } from "./api.js";
import { $, displayName, el, fullTime } from "./dom.js";
import { body, openSide, sideIs } from "./side.js";
import { app, emit, on } from "./state.js";

function highlighted(text, ranges) {
  const node = el("p", { class: "snippet" });
  let position = 0;
  for (const [start, end] of ranges) {
    node.append(text.slice(position, start), el("mark", {}, text.slice(start, end)));
    position = end;
  }
  node.append(text.slice(position));
  return node;
}

const roomName = (roomId) => app.rooms.get(roomId)?.name ?? `room ${roomId}`;

function result(onOpen, ...children) {
  return el("article", { class: "result", tabindex: "0", role: "link", onclick: onOpen,
    onkeydown: (event) => { if (event.key === "Enter") onOpen(); } }, ...children);
}

async function search(query) {
  openSide("search", "Search");
  body().replaceChildren(el("p", { class: "hint" }, "Searching…"));
  const found = await api("GET", `/api/search?q=${encodeURIComponent(query)}`);
  if (!found.ok) { body().replaceChildren(el("p", { class: "form-error", role: "alert" }, detail(found, "Search failed."))); return; }
  if (!found.data.results.length) { body().replaceChildren(el("p", { class: "hint" }, "Nothing found.")); return; }
  body().replaceChildren();
  showResults(found.data);
}

function showResults(page) {
  body().querySelector(".more-results")?.remove();
  body().append(...page.results.map((message) => result(
    () => emit("open-room", { roomId: message.room_id, messageId: message.id }),
    el("header", {}, el("strong", {}, displayName(message.author)), " in ", el("em", {}, roomName(message.room_id)),
      " ", el("time", { datetime: message.created_at, title: fullTime(message.created_at) }, new Date(message.created_at).toLocaleString())),
    highlighted(message.body, message.highlights || []))));
  if (page.next) {
    const more = el("button", { type: "button", class: "link more-results", onclick: async () => {
      more.disabled = true;
      const url = new URL(page.next, location.href);
      const next = await api("GET", url.pathname + url.search);
      if (next.ok) showResults(next.data); else more.disabled = false;
    } }, "More results");
    body().append(more);
  }
}

// The unread notifications (id -> {room_id, type}): read once at load, then pushed by the stream as
// they are made (a notice that comes both ways counts once).
let unreadNotices = new Map();

export async function loadNotificationCount() {
  const found = await api("GET", "/api/notifications/?unread=true&limit=100");
  if (!found.ok) return;
  unreadNotices = new Map(found.data.results.map((notice) => [notice.id, notice]));
  renderNotificationCount();
}

export function noticeArrived(notice) {
  const fresh = !notice.read && !unreadNotices.has(notice.id);
  if (!notice.read) unreadNotices.set(notice.id, notice);
  renderNotificationCount();
  if (sideIs("notifications")) notifications();
  if (fresh) emit("notice-arrived", notice);
}

// Notices that only repeat a room's unread messages ("dm", "message") are read with the room: the
// room was seen at its newest message. Mentions, replies and invitations stay until opened here.
const READ_WITH_THE_ROOM = new Set(["dm", "message"]);
export function roomSeen(roomId) {
  const ids = [...unreadNotices.values()]
    .filter((notice) => notice.room_id === roomId && READ_WITH_THE_ROOM.has(notice.type)).map((notice) => notice.id);
  if (!ids.length) return;
  for (const id of ids) unreadNotices.delete(id);
  renderNotificationCount();
  api("POST", "/api/notifications/read", { ids });
}

export const noticeIsUnread = (id) => unreadNotices.has(id);

// A notice opened from elsewhere (a desktop notification): read now.
export async function noticeOpened(id) {
  if (!id) return;
  unreadNotices.delete(id);
  renderNotificationCount();
  await api("POST", "/api/notifications/read", { ids: [id] });
  if (sideIs("notifications")) notifications();
}

function renderNotificationCount() {
  const badge = $("notification-count");
  const count = unreadNotices.size;
  badge.hidden = !count;
  badge.textContent = count >= 100 ? "99+" : String(count);
  app.unreadNotices = count;
  emit("unread-changed");
}

const DESCRIBE = { mention: "mentioned you in", reply: "replied to you in", invite: "added you to", message: "wrote in" };

function roomLabel(roomId) {
  const room = app.rooms.get(roomId);
  if (!room) return roomName(roomId);
  return room.kind === "direct" ? room.name : `${room.is_private ? "🔒" : "#"}${room.name}`;
}

// What a notice says, as parts: who, what they did, where (null when it goes without saying).
export function describeNotice(notice) {
  const who = notice.actor ? displayName(notice.actor) : "Someone";
  if (notice.type === "dm") {
    const room = app.rooms.get(notice.room_id);
    const group = room?.members && room.members.length > 2;
    return group ? { who, what: "wrote to", where: roomLabel(notice.room_id) } : { who, what: "sent you a message", where: null };
  }
  return { who, what: DESCRIBE[notice.type] || notice.type, where: roomLabel(notice.room_id) };
}

// One line of text (a desktop notification's title): "Ann wrote in #general".
export function noticeText(notice) {
  const { who, what, where } = describeNotice(notice);
  return where ? `${who} ${what} ${where}` : `${who} ${what}`;
}

async function notifications() {
  openSide("notifications", "Notifications");
  const found = await api("GET", "/api/notifications/?limit=50");
  if (!found.ok) return;
  const items = found.data.results.map((notice) => {
    const { who, what, where } = describeNotice(notice);
    const node = result(async () => {
      node.classList.remove("unread");
      await api("POST", "/api/notifications/read", { ids: [notice.id] });
      loadNotificationCount();
      emit("open-room", { roomId: notice.room_id, messageId: notice.message_id || null, reloadRooms: !app.rooms.has(notice.room_id) });
    }, el("p", {}, el("strong", {}, who), ` ${what}`, where ? " " : "", where ? el("em", {}, where) : "", notice.excerpt && notice.type === "message" ? ":" : ""),
    notice.excerpt ? el("p", { class: "snippet" }, notice.excerpt) : null,
    el("time", { datetime: notice.created_at, title: fullTime(notice.created_at) }, new Date(notice.created_at).toLocaleString()));
    if (!notice.read) node.classList.add("unread");
    return node;
  });
  const markAll = el("button", { type: "button", class: "link", onclick: async () => {
    await api("POST", "/api/notifications/read", { all: true });
    loadNotificationCount();
    notifications();
  } }, "Mark all read");
  // The desktop notifications' switch (push.js) goes on top.
  body().replaceChildren(el("div", { id: "desktop-notify", class: "desktop-notify" }), markAll, ...(items.length ? items : [el("p", { class: "hint" }, "Nothing yet.")]));
  emit("notifications-shown");
}

async function editHistory(message) {
  openSide("history", "Edit history");
  const records = [];
  let url = `/api/messages/${message.id}/history?limit=200`;
  while (url) {
    const found = await api("GET", url);
    if (!found.ok) { body().replaceChildren(el("p", { class: "hint" }, detail(found, "Not available."))); return; }
    records.push(...found.data.results);
    url = found.data.next;
  }
  body().replaceChildren(...records.map((record) => el("article", { class: "result" },
    el("header", {}, el("time", { datetime: record.written_at }, fullTime(record.written_at))),
    el("p", { class: "snippet" }, record.body))),
  el("article", { class: "result" }, el("header", {}, "now"), el("p", { class: "snippet" }, message.body)));
}

// The room directory: public rooms by name or description, most members first; join or open.
async function directory(query = "", more = null) {
  if (!more) {
    openSide("directory", "Public rooms");
    const field = el("input", { type: "search", placeholder: "Find a room", "aria-label": "Find a room", value: query });
    let timer = null;
    field.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => directoryResults(field.value.trim()), 200); });
    body().replaceChildren(field, el("div", { class: "directory-results" }));
    field.focus();
  }
  await directoryResults(query, more);
}

async function directoryResults(query, more = null) {
  const list = body().querySelector(".directory-results");
  if (!list) return;
  const url = more ?? `/api/rooms/directory?q=${encodeURIComponent(query)}`;
  const found = await api("GET", url);
  if (!sideIs("directory")) return;
  if (!found.ok) { list.replaceChildren(el("p", { class: "form-error", role: "alert" }, detail(found, "The directory cannot be read now."))); return; }
  const rows = found.data.results.map((room) => result(
    () => emit("open-room", { roomId: room.id }),
    el("header", {}, el("strong", {}, `# ${room.name}`), ` · ${room.member_count} member${room.member_count === 1 ? "" : "s"}`),
    room.description ? el("p", { class: "snippet" }, room.description) : null,
    room.joined ? el("p", { class: "hint" }, "You are in it") : el("button", { type: "button", onclick: async (event) => {
      event.stopPropagation();
      const joined = await api("POST", `/api/rooms/${room.id}/join`);
      if (joined.ok) { app.rooms.set(joined.data.id, joined.data); emit("open-room", { roomId: joined.data.id }); }
    } }, "Join")));
  if (!more) list.replaceChildren();
  list.querySelector(".more-results")?.remove();
  list.append(...(rows.length || more ? rows : [el("p", { class: "hint" }, "No public room matches.")]));
  if (found.data.next) {
    const url2 = new URL(found.data.next, location.href);
    list.append(el("button", { type: "button", class: "link more-results", onclick: () => directoryResults(query, url2.pathname + url2.search) }, "More rooms"));
  }
}

export function install() {
  $("directory-button").addEventListener("click", () => directory());
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const query = $("search-input").value.trim();
    if (query) search(query);
  });
  $("notifications-button").addEventListener("click", notifications);
  on("history", editHistory);
}
