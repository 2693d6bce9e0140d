// Messages typed but not yet acknowledged, kept in localStorage so that a room switch, a reload or
// a closed tab loses none. Each carries its client_id from the start: sending it again (after a
// reconnect, from another page load) returns the message the server already stored, so nothing
// is ever doubled. Every room's items go over the one socket, the user stream.
import { newClientId } from "./dom.js";
import { app, emit } from "./state.js";

const KEY = `chat-outbox:${app.me.id}`;

function load() {
  try {
    const items = JSON.parse(localStorage.getItem(KEY) || "[]");
    // Whatever was on its way when the page went away goes again (same client_id).
    return new Map(items.map((item) => [item.clientId, { ...item, status: item.status === "failed" ? "failed" : "queued" }]));
  } catch {
    return new Map();
  }
}

const items = load();
const save = () => localStorage.setItem(KEY, JSON.stringify([...items.values()]));

export function add(roomId, body, parentId = null) {
  const clientId = newClientId();
  items.set(clientId, { clientId, roomId, body, parent_id: parentId, status: "queued", at: Date.now() });
  save();
  emit("outbox", { roomId });
  return clientId;
}

export const pendingIn = (roomId, parentId = null) =>
  [...items.values()].filter((item) => item.roomId === roomId && (item.parent_id || null) === parentId);

export const get = (clientId) => items.get(clientId);

export function done(clientId) {
  const item = items.get(clientId);
  if (!item) return;
  items.delete(clientId);
  save();
  emit("outbox", { roomId: item.roomId });
}

export function failed(clientId, error) {
  const item = items.get(clientId);
  if (!item) return;
  Object.assign(item, { status: "failed", error });
  save();
  emit("outbox", { roomId: item.roomId });
}

export function retry(clientId) {
  const item = items.get(clientId);
  if (!item) return;
  Object.assign(item, { status: "queued", error: null });
  save();
  emit("outbox", { roomId: item.roomId, flush: true });
}

export function discard(clientId) { done(clientId); }

// Every queued item, as socket frames; marked sent (an ack or an error ends them).
export function takeForSocket() {
  const frames = [];
  for (const item of items.values()) {
    if (item.status !== "queued") continue;
    const frame = { type: "message.send", room_id: item.roomId, body: item.body, client_id: item.clientId };
    if (item.parent_id) frame.parent_id = item.parent_id;
    frames.push(frame);
    item.status = "sent";
  }
  return frames;
}

// A dropped socket: what it carried without an ack goes again.
export function requeue() {
  for (const item of items.values()) if (item.status === "sent") item.status = "queued";
}
