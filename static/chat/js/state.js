// What the page knows, shared by the modules, and a tiny event bus between them.
const config = JSON.parse(document.getElementById("chat-config").textContent);

export const app = {
  config,
  me: config.user,
  rooms: new Map(),      // id -> Room
  roomId: null,          // the open room
  role: null,            // my role there
  online: new Set(),     // user ids online anywhere (the stream's presence)
  roomOnline: new Set(), // of those, the open room's members (GET /api/rooms/{id}/presence)
  members: null,         // the open room's members (for @-mentions), loaded on demand
};

const listeners = new Map();
export function on(name, handler) {
  if (!listeners.has(name)) listeners.set(name, []);
  listeners.get(name).push(handler);
}
export function emit(name, detail) {
  for (const handler of listeners.get(name) || []) handler(detail);
}

export const isModerator = () => app.role === "owner" || app.role === "admin";

// Do not disturb (PATCH /api/auth/me {"dnd_until"}): until then, nothing pops up.
export const dndUntil = () => {
  const until = app.me.dnd_until ? new Date(app.me.dnd_until) : null;
  return until && until > new Date() ? until : null;
};
export const dndActive = () => dndUntil() !== null;
