// The open room's socket: reconnects by itself with backoff and resumes with ?since=<version>, so
// a cut network costs latency, never a message. Frames go to the handler given to open().
import { $ } from "./dom.js";
import * as outbox from "./outbox.js";

let socket = null;
let roomId = null;
let version = 0;
let attempt = 0;
let timer = null;
let handler = () => {};
let lastHeard = 0;

// A socket can look open long after the network went (a laptop lid, a lost Wi-Fi): ping now and
// then, and treat silence as a cut. The browser's own offline/online events act at once.
const PING_SECONDS = 20;
const SILENCE_SECONDS = 45;
setInterval(() => {
  if (!isOpen()) return;
  if (Date.now() - lastHeard > SILENCE_SECONDS * 1000) { socket.close(4000, "silent"); return; }
  socket.send(JSON.stringify({ type: "ping" }));
}, PING_SECONDS * 1000);
window.addEventListener("offline", () => {
  if (!roomId) return;
  setStatus("Offline — waiting for the network", "error");
  if (socket) socket.close(4000, "offline");
});
window.addEventListener("online", () => {
  if (!roomId || isOpen()) return;
  clearTimeout(timer);
  attempt = 0;
  connect();
});

export const isOpen = () => socket?.readyState === WebSocket.OPEN;

export function setStatus(text, kind = "") {
  const status = $("connection-status");
  status.textContent = text;
  status.className = `status ${kind}`;
}

export function seen(newVersion) { version = Math.max(version, newVersion); }

export function open(newRoomId, startVersion, onFrame) {
  close();
  roomId = newRoomId;
  version = startVersion;
  attempt = 0;
  handler = onFrame;
  connect();
}

export function close() {
  clearTimeout(timer);
  if (socket) {
    socket.onclose = null;
    socket.close(1000);
    socket = null;
  }
  roomId = null;
}

export function send(frame) {
  if (!isOpen()) return false;
  socket.send(JSON.stringify(frame));
  return true;
}

export function flush() {
  if (!isOpen()) return;
  for (const frame of outbox.takeForSocket(roomId)) socket.send(JSON.stringify(frame));
}

function connect() {
  const forRoom = roomId;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/api/ws/${forRoom}?since=${version}`);
  socket = ws;
  setStatus(attempt ? "Reconnecting…" : "Connecting…", "warn");
  ws.onopen = () => {
    attempt = 0;
    lastHeard = Date.now();
    setStatus("Connected", "ok");
    handler({ type: "connection.open" });
    flush();
  };
  ws.onmessage = (event) => {
    if (socket !== ws) return;
    lastHeard = Date.now();
    let frame;
    try { frame = JSON.parse(event.data); } catch { return; }
    handler(frame);
  };
  ws.onclose = (event) => {
    if (socket !== ws) return;
    socket = null;
    outbox.requeue(forRoom);
    handler({ type: "connection.closed", code: event.code });
    if (event.code === 4401) { window.location = `/login/?next=${encodeURIComponent(location.pathname)}`; return; }
    if (event.code === 4403 || event.code === 4404) { setStatus("You no longer have access to this room.", "error"); return; }
    if (!navigator.onLine) { setStatus("Offline — waiting for the network", "error"); return; } // "online" reconnects
    const delay = Math.min(10000, 500 * 2 ** attempt) * (0.75 + Math.random() / 2);
    attempt += 1;
    setStatus(`Offline — reconnecting in ${Math.ceil(delay / 1000)} s`, "error");
    timer = setTimeout(() => { if (roomId === forRoom) connect(); }, delay);
  };
}
