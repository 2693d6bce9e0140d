// What one is told of: the open room's notification menu in the pane header (all messages,
// mentions only or nothing, and mute; GET/PATCH /api/rooms/{id}/settings) and do not disturb in
// the sidebar's header (PATCH /api/auth/me {"dnd_until"}). A muted room shows no unread badge in
// the sidebar (rooms.js dims it and marks it 🔕), while its unread_count stays true.
import { api, detail } from "./api.js";
import { closePopover, openPopover } from "./dialogs.js";
import { $, el, showError } from "./dom.js";
import { renderRooms } from "./rooms.js";
import { app, dndUntil, on } from "./state.js";

// --- the room's menu --------------------------------------------------------------------------

const LEVELS = [["all", "All messages"], ["mentions", "Mentions only"], ["nothing", "Nothing"]];
const defaultLevel = (room) => (room?.kind === "direct" ? "all" : "mentions");
const levelOf = (room) => room?.notify || defaultLevel(room);

function apply(roomId, settings) {
  const room = app.rooms.get(roomId);
  if (!room) return;
  app.rooms.set(roomId, { ...room, notify: settings.notify ?? room.notify, muted: settings.muted ?? room.muted });
  renderRooms();
  renderButton();
}

// The header's bell: 🔕 when the open room tells nothing.
export function renderButton() {
  const button = $("notify-button");
  const room = app.rooms.get(app.roomId);
  const quiet = Boolean(room?.muted) || levelOf(room) === "nothing";
  button.textContent = quiet ? "🔕" : "🔔";
  button.title = room?.muted ? "Notification settings (muted)" : `Notification settings (${LEVELS.find(([v]) => v === levelOf(room))?.[1].toLowerCase()})`;
}

function item(role, label, onclick) {
  return el("button", { type: "button", role, class: "menu-item", "aria-checked": "false", onclick },
    el("span", { class: "menu-check", "aria-hidden": "true" }), label);
}

function check(node, on) {
  node.setAttribute("aria-checked", String(on));
  node.querySelector(".menu-check").textContent = on ? "✓" : "";
}

async function openRoomMenu() {
  const roomId = app.roomId;
  if (!roomId || !app.rooms.has(roomId)) return;
  const error = el("p", { class: "form-error", role: "alert", hidden: true });
  const levels = LEVELS.map(([value, label]) => [value, item("menuitemradio", label, () => change({ notify: value }))]);
  const mute = item("menuitemcheckbox", "Mute this room", () => change({ muted: !app.rooms.get(roomId)?.muted }));
  const note = el("p", { class: "menu-note" });
  const menu = el("div", { class: "menu", role: "menu", "aria-label": "Notifications for this room" },
    el("p", { class: "menu-title" }, "Notify me about"), ...levels.map(([, node]) => node), el("hr"), mute, note, error);
  const draw = () => {
    const room = app.rooms.get(roomId);
    for (const [value, node] of levels) check(node, levelOf(room) === value);
    check(mute, Boolean(room?.muted));
    note.textContent = room?.muted ? "Muted: no notifications and no unread badge." : "";
  };
  const change = async (changes) => {
    const before = { notify: app.rooms.get(roomId)?.notify, muted: app.rooms.get(roomId)?.muted };
    apply(roomId, changes); // at once; undone if the server refuses
    draw();
    showError(error, "");
    const saved = await api("PATCH", `/api/rooms/${roomId}/settings`, changes);
    if (saved.ok) apply(roomId, saved.data);
    else { apply(roomId, before); showError(error, detail(saved, "Could not change that.")); }
    draw();
  };
  menu.addEventListener("keydown", (event) => {
    const items = [...menu.querySelectorAll(".menu-item")];
    const at = items.indexOf(document.activeElement);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      items[(at + (event.key === "ArrowDown" ? 1 : items.length - 1)) % items.length].focus();
    }
  });
  draw();
  openPopover($("notify-button"), menu, { onClose: () => $("notify-button").setAttribute("aria-expanded", "false") });
  $("notify-button").setAttribute("aria-expanded", "true");
  (menu.querySelector('[role=menuitemradio][aria-checked="true"]') || levels[0][1]).focus();
  // The page's copy may be older than another device's change.
  const found = await api("GET", `/api/rooms/${roomId}/settings`);
  if (found.ok && menu.isConnected) { apply(roomId, found.data); draw(); }
}

// --- do not disturb ---------------------------------------------------------------------------

const pad = (n) => String(n).padStart(2, "0");
const hhmm = (date) => `${pad(date.getHours())}:${pad(date.getMinutes())}`;
const minutesFromNow = (minutes) => new Date(Date.now() + minutes * 60000);
function tomorrowAtNine() {
  const date = new Date();
  date.setDate(date.getDate() + 1);
  date.setHours(9, 0, 0, 0);
  return date;
}
const DND_CHOICES = [
  ["30 minutes", () => minutesFromNow(30)],
  ["1 hour", () => minutesFromNow(60)],
  ["2 hours", () => minutesFromNow(120)],
  ["Until tomorrow (09:00)", tomorrowAtNine],
];

let dndTimer = null;

function renderDnd() {
  const until = dndUntil();
  const button = $("dnd-button");
  button.textContent = until ? "🔕" : "🌙";
  button.title = until ? `Do not disturb until ${hhmm(until)}` : "Do not disturb";
  button.classList.toggle("active", Boolean(until));
  $("dnd-status").hidden = !until;
  $("dnd-until").textContent = until ? `🔕 until ${hhmm(until)}` : "";
  if (until) $("dnd-until").title = `Notifications paused until ${until.toLocaleString()}`;
  clearTimeout(dndTimer);
  // Over by itself when the time comes (the server stops holding notices back then too).
  if (until) dndTimer = setTimeout(renderDnd, Math.min(until - Date.now() + 250, 2 ** 31 - 1));
}

async function setDnd(until, error) {
  showError(error, "");
  const saved = await api("PATCH", "/api/auth/me", { dnd_until: until ? until.toISOString() : null });
  if (!saved.ok) {
    const fields = saved.data?.fields || {};
    showError(error, fields.dnd_until?.[0] || detail(saved, "Could not change that."));
    return;
  }
  app.me = { ...app.me, dnd_until: saved.data?.dnd_until ?? (until ? until.toISOString() : null) };
  renderDnd();
  closePopover();
}

function openDndMenu(anchor) {
  const error = el("p", { class: "form-error", role: "alert", hidden: true });
  const until = dndUntil();
  const items = DND_CHOICES.map(([label, when]) => el("button", { type: "button", role: "menuitem", class: "menu-item", onclick: () => setDnd(when(), error) },
    el("span", { class: "menu-check", "aria-hidden": "true" }), label));
  const off = until ? el("button", { type: "button", role: "menuitem", class: "menu-item", onclick: () => setDnd(null, error) },
    el("span", { class: "menu-check", "aria-hidden": "true" }), "Turn off") : null;
  const menu = el("div", { class: "menu", role: "menu", "aria-label": "Do not disturb" },
    el("p", { class: "menu-title" }, until ? `Paused until ${hhmm(until)}` : "Pause notifications for"), ...items, off ? el("hr") : "", off || "", error);
  menu.addEventListener("keydown", (event) => {
    const all = [...menu.querySelectorAll(".menu-item")];
    const at = all.indexOf(document.activeElement);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      all[(at + (event.key === "ArrowDown" ? 1 : all.length - 1)) % all.length].focus();
    }
  });
  openPopover(anchor, menu, { onClose: () => $("dnd-button").setAttribute("aria-expanded", "false") });
  $("dnd-button").setAttribute("aria-expanded", "true");
  (off || items[0]).focus();
}

export function install() {
  $("notify-button").addEventListener("click", openRoomMenu);
  $("dnd-button").addEventListener("click", (event) => openDndMenu(event.currentTarget));
  $("dnd-off").addEventListener("click", () => setDnd(null, null));
  on("me-loaded", renderDnd);
  renderDnd();
}
