// The page's one socket, the user stream (WS /api/ws): every room's messages and typing, read
// markers moved on any device, rooms joined, changed or lost, notifications and presence. Opening
// another room opens no socket. It reconnects by itself with backoff and resumes with
// ?cursor=<the last one processed>, so a cut network costs latency, never a message. The first
// cursor comes with the page, read before the page's own state: what changed while the page was
// on its way is replayed (every handler is idempotent).
import { $ } from "./dom.js";
import * as outbox from "./outbox.js";

let socket = null;
let cursor = null;
let started = false;
let resetting = false; // the cursor was refused: the page's state is read again once live
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
  if (!started) return;
  setStatus("Offline — waiting for the network", "error");
  if (socket) socket.close(4000, "offline");
});
window.addEventListener("online", () => {
  if (!started || socket) return;
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

// Once per page: frames go to `onFrame`, and so do `connection.open`, `connection.closed` and
// `connection.reset` (after a refused cursor, once live again: what the page holds must be read
// again; read after the new stream started, nothing falls between the two).
export function start(initialCursor, onFrame) {
  cursor = initialCursor || null;
  handler = onFrame;
  started = true;
  connect();
}

export function send(frame) {
  if (!isOpen()) return false;
  socket.send(JSON.stringify(frame));
  return true;
}

// Every room's queued messages go over the one socket (each frame names its room).
export function flush() {
  if (!isOpen()) return;
  for (const frame of outbox.takeForSocket()) socket.send(JSON.stringify(frame));
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = cursor ? `?cursor=${encodeURIComponent(cursor)}` : "";
  const ws = new WebSocket(`${scheme}://${location.host}/api/ws${query}`);
  socket = ws;
  setStatus(attempt ? "Reconnecting…" : "Connecting…", "warn");
  ws.onopen = () => {
    lastHeard = Date.now();
    handler({ type: "connection.open" });
    flush();
  };
  ws.onmessage = (event) => {
    if (socket !== ws) return;
    lastHeard = Date.now();
    let frame;
    try { frame = JSON.parse(event.data); } catch { return; }
    handler(frame);
    if (frame.cursor) cursor = frame.cursor; // processed: a resume starts after it
    if (frame.type === "sync.done") {
      attempt = 0;
      setStatus("Connected", "ok");
      if (resetting) { resetting = false; handler({ type: "connection.reset" }); }
    }
  };
  ws.onclose = (event) => {
    if (socket !== ws) return;
    socket = null;
    outbox.requeue();
    handler({ type: "connection.closed", code: event.code });
    if (event.code === 4401) { window.location = `/login/?next=${encodeURIComponent(location.pathname)}`; return; }
    if (event.code === 4400 && cursor) {
      // The cursor is too old or not this account's: start afresh and read the page's state again.
      cursor = null;
      resetting = true;
      connect();
      return;
    }
    if (!navigator.onLine) { setStatus("Offline — waiting for the network", "error"); return; } // "online" reconnects
    const delay = Math.min(10000, 500 * 2 ** attempt) * (0.75 + Math.random() / 2);
    attempt += 1;
    setStatus(`Offline — reconnecting in ${Math.ceil(delay / 1000)} s`, "error");
    timer = setTimeout(connect, delay);
  };
}
