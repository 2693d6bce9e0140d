// The sidebar's rooms (with unread badges), creating and joining rooms, and the members panel
// (roles, inviting, the room's settings) with who is online.
import { api, detail } from "./api.js";
import { confirmAction } from "./dialogs.js";
import { $, avatar, displayName, el, showError } from "./dom.js";
import { forgetMembers } from "./mentions.js";
import { body, openSide, sideIs } from "./side.js";
import { app, emit, isModerator, on } from "./state.js";

// A muted room: dimmed and marked 🔕, with no badge (its unread_count stays as it is).
function roomItem(room) {
  const open = room.id === app.roomId;
  const unread = open || room.muted ? 0 : room.unread_count;
  const mark = room.kind === "direct" ? "👤" : room.is_private ? "🔒" : "#";
  const classes = ["room", open ? "active" : "", room.muted ? "muted" : ""].filter(Boolean).join(" ");
  return el("li", {},
    el("a", { href: `/chat/${room.id}/`, class: classes, "data-room-id": room.id, "aria-current": open ? "page" : null,
      onclick: (event) => { event.preventDefault(); emit("open-room", { roomId: room.id }); } },
      el("span", { class: "room-name" }, `${mark} ${room.name}`),
      room.muted ? el("span", { class: "muted-mark", role: "img", "aria-label": "muted", title: "Muted" }, "🔕") : null,
      unread ? el("span", { class: "badge", "aria-label": `${unread} unread` }, unread >= 1000 ? "999+" : String(unread)) : null));
}

// Team rooms and direct messages, each in its own list of the sidebar.
export function renderRooms() {
  const all = [...app.rooms.values()];
  const teams = all.filter((room) => room.kind !== "direct");
  $("room-list").replaceChildren(...(teams.length ? teams.map(roomItem) : [el("li", { class: "hint" }, "No rooms yet: create one below.")]));
  $("dm-list").replaceChildren(...all.filter((room) => room.kind === "direct").map(roomItem));
  emit("unread-changed");
}

export async function loadRooms() {
  const result = await api("GET", "/api/rooms/");
  if (!result.ok) return;
  app.rooms = new Map(result.data.results.map((room) => [room.id, room]));
  renderRooms();
}

export const totalUnread = () => [...app.rooms.values()].reduce((sum, room) => sum + (room.id === app.roomId || room.muted ? 0 : room.unread_count), 0);

export function renderOnline() {
  const count = app.roomOnline.size;
  $("online-count").textContent = app.roomId ? `· ${count} online` : "";
  if (sideIs("members")) showMembers();
}

async function showMembers() {
  const roomId = app.roomId;
  if (!sideIs("members")) openSide("members", "Members");
  const result = await api("GET", `/api/rooms/${roomId}/members?limit=200`);
  if (!result.ok || roomId !== app.roomId) return;
  const manager = isModerator();
  const rows = result.data.results.map((member) => {
    const online = app.online.has(member.user.id);
    return el("li", {},
      avatar(member.user, { size: "small" }),
      el("span", { class: online ? "dot online" : "dot", role: "img", "aria-label": online ? "online" : "offline" }),
      ` ${displayName(member.user)}${member.user.id === app.me.id ? " (you)" : ""} `,
      manager && member.user.id !== app.me.id ? roleSelect(roomId, member) : el("span", { class: "role" }, member.role));
  });
  const error = el("p", { class: "form-error", role: "alert", hidden: true });
  const invite = manager ? el("form", { class: "inline-form", onsubmit: async (event) => {
    event.preventDefault();
    const field = event.target.querySelector("input");
    const added = await api("POST", `/api/rooms/${roomId}/members`, { username: field.value.trim() });
    if (!added.ok) { showError(error, detail(added, "Could not add that person.")); return; }
    field.value = "";
    forgetMembers();
    showMembers();
  } }, el("input", { placeholder: "Username to add", "aria-label": "Username to add", required: true }),
  el("button", { type: "submit" }, "Add"), error) : null;
  const direct = app.rooms.get(roomId)?.kind === "direct";
  body().replaceChildren(el("ul", { class: "members", "aria-label": "Members" }, ...rows), invite || "",
    manager && !direct ? inviteLink(roomId) : "", manager ? roomSettings(roomId) : "");
}

// An invite link anyone can use to join (a private room too): made on demand, shown with a Copy
// button; the last one made stays shown while the panel redraws (presence changes redraw it).
const madeLinks = new Map(); // room id -> url
function inviteLink(roomId) {
  const error = el("p", { class: "form-error", role: "alert", hidden: true });
  const box = el("div", { class: "invite-link" });
  const show = (url) => {
    const field = el("input", { value: url, readonly: true, "aria-label": "Invite link", onfocus: (event) => event.target.select() });
    const copy = el("button", { type: "button", onclick: async () => {
      try { await navigator.clipboard.writeText(url); copy.textContent = "Copied"; }
      catch { field.focus(); field.select(); copy.textContent = "Press Ctrl+C"; }
    } }, "Copy");
    box.replaceChildren(field, copy);
  };
  const make = el("button", { type: "button", class: "link", onclick: async () => {
    const made = await api("POST", `/api/rooms/${roomId}/invites`, {});
    if (!made.ok) { showError(error, detail(made, "Could not make a link.")); return; }
    madeLinks.set(roomId, made.data.url);
    show(made.data.url);
  } }, "Create an invite link");
  if (madeLinks.has(roomId)) show(madeLinks.get(roomId));
  return el("div", { class: "settings" }, make, box, error);
}

function roomSettings(roomId) {
  const room = app.rooms.get(roomId);
  const error = el("p", { class: "form-error", role: "alert", hidden: true });
  const select = el("select", { "aria-label": "Who sees edit history", onchange: async () => {
    const result = await api("PATCH", `/api/rooms/${roomId}`, { edit_history_visibility: select.value });
    if (result.ok) app.rooms.set(roomId, { ...room, ...result.data }); else showError(error, detail(result, "Not allowed."));
  } }, ...[["everyone", "everyone"], ["moderators", "owners and admins"]].map(([value, label]) =>
    el("option", { value, selected: room?.edit_history_visibility === value }, label)));
  return el("div", { class: "settings" }, el("label", {}, "Edit history visible to ", select), error,
    el("p", { class: "hint" }, `Room id ${roomId}: others join with it.`));
}

function roleSelect(roomId, member) {
  const select = el("select", { "aria-label": `Role of ${member.user.username}`, onchange: async () => {
    const result = await api("PATCH", `/api/rooms/${roomId}/members/${member.user.id}`, { role: select.value });
    if (!result.ok) { select.value = member.role; emit("error", detail(result, "Not allowed.")); }
  } }, ...["member", "admin", "owner"].map((role) => el("option", { value: role, selected: role === member.role }, role)));
  return select;
}

function formWithError(form, submit) {
  const error = form.querySelector(".form-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, "");
    const message = await submit();
    showError(error, message);
  });
  form.addEventListener("input", () => showError(error, ""));
}

export function install() {
  formWithError($("create-room-form"), async () => {
    const name = $("new-room-name").value.trim();
    if (!name) return "Give the room a name.";
    const result = await api("POST", "/api/rooms/", { name, is_private: $("new-room-private").checked });
    if (!result.ok) return detail(result, "Could not create the room.");
    $("create-room-form").reset();
    app.rooms.set(result.data.id, result.data);
    emit("open-room", { roomId: result.data.id });
    return "";
  });
  formWithError($("join-room-form"), async () => {
    const id = $("join-room-id").value.trim();
    const result = await api("POST", `/api/rooms/${encodeURIComponent(id)}/join`);
    if (!result.ok) return result.status === 404 ? "No public room has that id." : detail(result, "Could not join that room.");
    $("join-room-form").reset();
    app.rooms.set(result.data.id, result.data);
    emit("open-room", { roomId: result.data.id });
    return "";
  });
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-join]");
    if (!button) return;
    const result = await api("POST", `/api/rooms/${button.dataset.join}/join`);
    if (result.ok) { app.rooms.set(result.data.id, result.data); emit("open-room", { roomId: result.data.id, replace: true }); }
  });
  $("leave-button").addEventListener("click", async () => {
    if (!app.roomId) return;
    const room = app.rooms.get(app.roomId);
    if (!(await confirmAction(`Leave ${room ? room.name : "this room"}?`, "Leave"))) return;
    const result = await api("DELETE", `/api/rooms/${app.roomId}/members/${app.me.id}`);
    if (!result.ok) { emit("error", detail(result, "Could not leave.")); return; }
    app.rooms.delete(app.roomId);
    emit("close-room");
  });
  $("members-button").addEventListener("click", showMembers);
  on("presence", renderOnline);
}
