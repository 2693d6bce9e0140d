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

// The unread notifications' ids: read once at load, then pushed by the stream as they are made
// (a notice that comes both ways counts once).
let unreadNotices = new Set();

export async function loadNotificationCount() {
  const found = await api("GET", "/api/notifications/?unread=true&limit=100");
  if (!found.ok) return;
  unreadNotices = new Set(found.data.results.map((notice) => notice.id));
  renderNotificationCount();
}

export function noticeArrived(notice) {
  if (!notice.read) unreadNotices.add(notice.id);
  renderNotificationCount();
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

const DESCRIBE = { mention: "mentioned you in", reply: "replied to you in", invite: "added you to" };

async function notifications() {
  openSide("notifications", "Notifications");
  const found = await api("GET", "/api/notifications/?limit=50");
  if (!found.ok) return;
  const items = found.data.results.map((notice) => {
    const who = notice.actor ? displayName(notice.actor) : "Someone";
    const node = result(async () => {
      node.classList.remove("unread");
      await api("POST", "/api/notifications/read", { ids: [notice.id] });
      loadNotificationCount();
      emit("open-room", { roomId: notice.room_id, messageId: notice.message_id || null, reloadRooms: !app.rooms.has(notice.room_id) });
    }, el("p", {}, el("strong", {}, who), ` ${DESCRIBE[notice.type] || notice.type} `, el("em", {}, roomName(notice.room_id))),
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
  body().replaceChildren(markAll, ...(items.length ? items : [el("p", { class: "hint" }, "Nothing yet.")]));
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
