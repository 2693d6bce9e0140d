// The room's composer and the thread panel's: Enter sends, Shift+Enter is a new line; what is
// sent goes into the outbox first (it survives a reload) and then over the socket.
import { $, showError } from "./dom.js";
import * as connection from "./connection.js";
import * as mentions from "./mentions.js";
import * as outbox from "./outbox.js";
import { app, on } from "./state.js";

let typingSentAt = 0;

// Drafts per room, kept in the browser: what was typed in one room stays there (a reload too),
// and never follows the reader into another room.
const draftKey = (roomId) => `chat-draft:${app.me.id}:${roomId}`;

export function leaveRoom(roomId) {
  const input = $("message-input");
  if (roomId) {
    if (input.value.trim()) localStorage.setItem(draftKey(roomId), input.value);
    else localStorage.removeItem(draftKey(roomId));
  }
  if (typingSentAt && roomId) connection.send({ type: "typing", room_id: roomId, state: "stop" });
  typingSentAt = 0;
  input.value = "";
  grow(input);
  showError($("composer-error"), "");
}

export function enterRoom(roomId) {
  const input = $("message-input");
  input.value = localStorage.getItem(draftKey(roomId)) || "";
  grow(input);
}

function grow(input) {
  input.style.height = "auto";
  // A hidden composer (a phone showing the room list) measures 0: leave it to its rows then.
  input.style.height = input.scrollHeight ? `${Math.min(200, input.scrollHeight)}px` : "";
}

// A composer over `form`/`input`; `parentId()` names the thread it replies in (null: the room).
export function attachComposer(form, input, parentId) {
  const error = form.querySelector(".form-error");
  mentions.attach(input);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); form.requestSubmit(); }
  });
  input.addEventListener("input", () => {
    grow(input);
    showError(error, "");
    if (!parentId() && app.roomId) {
      if (input.value) localStorage.setItem(draftKey(app.roomId), input.value);
      else localStorage.removeItem(draftKey(app.roomId));
    }
    const now = Date.now();
    if (input.value && app.roomId && now - typingSentAt > 3000 && connection.send({ type: "typing", room_id: app.roomId, state: "start" })) typingSentAt = now;
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!app.roomId) { showError(error, "Open a room first."); return; }
    const text = input.value;
    if (!text.trim()) return;
    if (text.length > app.config.max_body) {
      showError(error, `A message holds at most ${app.config.max_body} characters (this one has ${text.length}).`);
      return;
    }
    outbox.add(app.roomId, text, parentId());
    if (!parentId()) localStorage.removeItem(draftKey(app.roomId));
    input.value = "";
    grow(input);
    showError(error, "");
    if (typingSentAt) connection.send({ type: "typing", room_id: app.roomId, state: "stop" });
    typingSentAt = 0;
    connection.flush();
  });
}

export function setEnabled(enabled, roomName = "") {
  const input = $("message-input");
  input.disabled = !enabled;
  $("send-button").disabled = !enabled;
  $("file-input").disabled = !enabled;
  input.placeholder = enabled ? `Message #${roomName}` : "Open a room to write";
  input.title = enabled ? "Enter sends, Shift+Enter starts a new line" : "";
}

export function install() {
  attachComposer($("composer"), $("message-input"), () => null);
  on("error", (text) => showError($("composer-error"), text));
}
