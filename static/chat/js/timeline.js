// The open room's message list: pages of history loaded as the reader scrolls (older above, newer
// below after a jump), day separators, a "new messages" line at the read marker, one author's
// consecutive messages grouped, and a scroll position that stays put while pages load above.
import { api, detail } from "./api.js";
import { $, dayLabel, el, sameDay } from "./dom.js";
import { renderMessage, renderPending } from "./message_view.js";
import * as outbox from "./outbox.js";
import { app, emit } from "./state.js";

const GROUP_SECONDS = 5 * 60; // the same in chatproject/pages.py
const PAGE = 50;

export const view = {
  roomId: null,
  messages: new Map(), // id -> Message, replies included (the thread panel reads them here)
  minSeq: null,        // lowest seq loaded
  hasOlder: false,
  hasNewer: false,     // after a jump: the newest messages are not loaded yet
  lastSeq: 0,          // highest top-level seq loaded
  lastReadSeq: 0,      // the read marker when the room opened: where the "new messages" line goes
  unreadAtOpen: false, // whether there is a line to draw at all
  version: 0,
  highlight: null,     // a message id to show highlighted (a link, a search result)
  loading: false,
  unseen: 0,           // new messages below the reader while scrolled up
  headAtOpen: 0,       // the room's last seq when it opened: after a jump, later ones are news
  stuck: true,         // the reader was at the bottom when last seen (the list may be hidden now)
};

const pane = () => $("messages");
// While the list is hidden (a phone with a panel open) it has no height: it keeps what it was.
const visible = () => pane().clientHeight > 0;
const atBottom = () => {
  const p = pane();
  if (!visible()) return view.stuck;
  return p.scrollHeight - p.scrollTop - p.clientHeight < 48;
};

export function reset(roomId, page, { lastReadSeq = 0, highlight = null, around = false } = {}) {
  Object.assign(view, {
    roomId, messages: new Map(), minSeq: null, hasOlder: false, hasNewer: false, lastSeq: 0,
    lastReadSeq, unreadAtOpen: false, version: 0, highlight, loading: false, unseen: 0,
  });
  addPage(page);
  const room = app.rooms.get(roomId);
  view.unreadAtOpen = Boolean(room?.unread_count);
  view.headAtOpen = room?.last_seq ?? 0;
  view.hasNewer = around && room ? view.lastSeq < room.last_seq : false;
}

function addPage(page) {
  for (const message of page.results) upsert(message);
  const tops = page.results.filter((m) => !m.parent_id);
  if (tops.length) view.minSeq = Math.min(view.minSeq ?? Infinity, tops[0].seq);
  view.hasOlder = Boolean(page.next) && view.minSeq !== null && view.minSeq > 1;
}

// Returns whether anything changed (an older or equal version is no news).
export function upsert(message) {
  const known = view.messages.get(message.id);
  if (known && known.version >= message.version) return false;
  view.messages.set(message.id, message);
  view.version = Math.max(view.version, message.version);
  if (!message.parent_id && !view.hasNewer) view.lastSeq = Math.max(view.lastSeq, message.seq);
  if (message.client_id && message.author.id === app.me.id) outbox.done(message.client_id);
  return true;
}

function entries() {
  const tops = [...view.messages.values()].filter((m) => !m.parent_id).sort((a, b) => a.seq - b.seq);
  const nodes = [];
  nodes.push(el("p", { class: "hint history-edge" }, view.hasOlder ? "Loading older messages…" : tops.length ? "The beginning of this room." : ""));
  let previous = null;
  let marked = false;
  for (const message of tops) {
    if (!previous || !sameDay(previous.created_at, message.created_at)) {
      nodes.push(el("div", { class: "day-separator", role: "separator" }, el("span", {}, dayLabel(message.created_at))));
      previous = null;
    }
    if (!marked && message.seq > view.lastReadSeq && message.author.id !== app.me.id && view.unreadAtOpen) {
      nodes.push(el("div", { class: "new-line", role: "separator" }, el("span", {}, "New messages")));
      marked = true;
      previous = null;
    }
    const grouped = previous !== null && previous.author.id === message.author.id && !previous.deleted
      && (new Date(message.created_at) - new Date(previous.created_at)) / 1000 < GROUP_SECONDS;
    const node = renderMessage(message, { grouped });
    if (message.id === view.highlight) node.classList.add("highlight");
    nodes.push(node);
    previous = message;
  }
  if (view.hasNewer) nodes.push(el("p", { class: "hint" }, "Loading newer messages…"));
  else for (const item of outbox.pendingIn(view.roomId)) nodes.push(renderPending(item));
  if (!tops.length && nodes.length === 1) nodes.push(el("p", { class: "hint" }, "No messages yet. Say hello!"));
  return nodes;
}

// Redraw, keeping the reader where they were: at the bottom (new messages follow), or on the
// message at the top of the view (pages loading above or below do not move it).
export function render({ toBottom = false } = {}) {
  const list = pane();
  const stick = toBottom || (atBottom() && !view.hasNewer);
  let anchor = null;
  if (!stick && visible()) {
    const top = list.getBoundingClientRect().top;
    for (const node of list.querySelectorAll(".message[data-id]")) {
      const box = node.getBoundingClientRect();
      if (box.bottom > top) { anchor = { id: node.dataset.id, offset: box.top - top }; break; }
    }
  }
  list.replaceChildren(...entries());
  if (stick) list.scrollTop = list.scrollHeight;
  else if (view.anchor && !visible()) anchor = view.anchor; // restored once the list shows again
  else if (anchor) {
    const node = list.querySelector(`.message[data-id="${CSS.escape(anchor.id)}"]`);
    if (node) list.scrollTop += node.getBoundingClientRect().top - list.getBoundingClientRect().top - anchor.offset;
  }
  if (stick) view.unseen = 0;
  if (visible()) view.stuck = stick;
  view.anchor = anchor;
  showJumpButton();
  fillIfShort();
}

function showJumpButton() {
  const button = $("jump-latest");
  const away = view.hasNewer || !atBottom();
  button.hidden = !away || (!view.unseen && !view.hasNewer);
  button.textContent = view.unseen ? `${view.unseen} new message${view.unseen === 1 ? "" : "s"} ↓` : "Jump to the latest ↓";
}

// A page that does not fill the pane has no scroll bar to scroll up with: load until it does.
function fillIfShort() {
  const list = pane();
  if (!visible()) return;
  if (view.hasOlder && !view.loading && list.scrollHeight <= list.clientHeight + 40) loadOlder();
}

export async function loadOlder() {
  if (view.loading || !view.hasOlder || view.minSeq === null) return;
  view.loading = true;
  const roomId = view.roomId;
  const result = await api("GET", `/api/messages/${roomId}?before=${view.minSeq}&limit=${PAGE}`);
  view.loading = false;
  if (roomId !== view.roomId) return;
  if (!result.ok) { emit("error", detail(result, "Could not load older messages.")); return; }
  const before = view.minSeq;
  addPage(result.data);
  if (view.minSeq === before) view.hasOlder = false; // nothing older came back
  render();
}

export async function loadNewer() {
  if (view.loading || !view.hasNewer) return;
  view.loading = true;
  const roomId = view.roomId;
  const result = await api("GET", `/api/messages/${roomId}?after=${view.lastSeq}&limit=${PAGE}`);
  view.loading = false;
  if (roomId !== view.roomId || !result.ok) return;
  for (const message of result.data.results) {
    view.messages.set(message.id, message);
    view.version = Math.max(view.version, message.version);
    if (!message.parent_id) view.lastSeq = Math.max(view.lastSeq, message.seq);
  }
  view.hasNewer = Boolean(result.data.next);
  render();
}

// A live message: drawn at once when the reader is at the bottom, else counted on the button.
export function arrived(message, isNew) {
  if (view.hasNewer && !message.parent_id && message.seq > view.lastSeq) {
    // Below the loaded pages (the socket replays them after a jump): only what came after the
    // room opened is news; the rest loads as the reader scrolls down.
    if (isNew && message.seq > view.headAtOpen) { view.unseen += 1; showJumpButton(); }
    return false;
  }
  const wasAtBottom = atBottom();
  const changed = upsert(message);
  if (!changed) return false;
  if (isNew && !message.parent_id && !wasAtBottom) view.unseen += 1;
  render();
  return true;
}

export async function jumpToLatest() {
  if (view.hasNewer) {
    const result = await api("GET", `/api/messages/${view.roomId}?limit=${PAGE}`);
    if (!result.ok) return;
    view.messages = new Map([...view.messages].filter(([, m]) => m.parent_id));
    view.minSeq = null;
    view.hasNewer = false;
    addPage(result.data);
  }
  view.unseen = 0;
  render({ toBottom: true });
}

// The list shows again (a phone's panel closed) or an image above the end finished loading.
export function settle() {
  if (!visible()) return;
  const list = pane();
  if (view.stuck && !view.hasNewer) list.scrollTop = list.scrollHeight;
  else if (view.anchor) {
    const node = list.querySelector(`.message[data-id="${CSS.escape(view.anchor.id)}"]`);
    if (node) list.scrollTop += node.getBoundingClientRect().top - list.getBoundingClientRect().top - view.anchor.offset;
  }
  showJumpButton();
}

export function scrollToHighlight() {
  const node = view.highlight && pane().querySelector(`#m-${CSS.escape(view.highlight)}`);
  if (node) node.scrollIntoView({ block: "center" });
  showJumpButton();
}

export function install() {
  pane().addEventListener("scroll", () => {
    const list = pane();
    if (list.scrollTop < 400) loadOlder();
    if (list.scrollHeight - list.scrollTop - list.clientHeight < 400) loadNewer();
    if (!visible()) return;
    view.stuck = atBottom();
    if (view.stuck) { view.unseen = 0; emit("at-bottom"); }
    showJumpButton();
  }, { passive: true });
  $("jump-latest").addEventListener("click", jumpToLatest);
}

// A person's new name or face on the messages already loaded (their later ones carry it anyway).
export function updateAuthor(user) {
  for (const message of view.messages.values()) {
    if (message.author.id === user.id) {
      message.author = { ...message.author, display_name: user.display_name, avatar_url: user.avatar_url };
    }
  }
}
