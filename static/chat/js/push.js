// Desktop notifications. The service worker (/sw.js, static/chat/sw.js) is registered on every
// load, with no permission prompt; the prompt comes only from the "Enable desktop notifications"
// button of the notifications panel. Then Web Push: the server's VAPID key (GET /api/push/key),
// pushManager.subscribe and POST /api/push/subscriptions; the worker shows what the server pushes,
// even with every tab closed. Where push cannot be had (no VAPID key on the server: 503; a browser
// with no push service, as headless Chromium), the page itself shows the stream's notifications
// while it is hidden: "on (while this tab is open)". A click on either kind opens the room in this
// tab without a reload (the worker focuses the tab and posts it the address: openNotificationUrl).
import { api } from "./api.js";
import { $, el } from "./dom.js";
import * as panels from "./panels.js";
import { app, dndActive, emit, on } from "./state.js";

const supported = "Notification" in window && "serviceWorker" in navigator && window.isSecureContext;
// The choice is the account's on this browser (another account signing in here starts off).
const CHOICE = `chat.desktop-notifications.${app.me.id}`;
const SUBSCRIBE_TIMEOUT_MS = 15000;

let registration = null; // the worker's registration, once active
let mode = supported ? "off" : "unsupported"; // off | working | push | page | blocked | unsupported

const choice = () => { try { return localStorage.getItem(CHOICE); } catch { return null; } };
const choose = (value) => { try { localStorage.setItem(CHOICE, value); } catch { /* private mode */ } };

export const desktopMode = () => mode;

async function register() {
  if (!("serviceWorker" in navigator)) return null;
  try {
    await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    registration = await navigator.serviceWorker.ready;
    // A page that navigated while the worker was activating can miss its clients.claim(): it asks
    // again, so that every page is controlled from its first load.
    if (!navigator.serviceWorker.controller) registration.active?.postMessage({ type: "claim" });
  } catch (error) {
    console.warn("The service worker could not be registered:", error);
    registration = null;
  }
  return registration;
}

// A URL-safe base64 VAPID key as the bytes pushManager.subscribe takes.
function keyBytes(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=");
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

const sameBytes = (buffer, bytes) => {
  if (!buffer) return false;
  const other = new Uint8Array(buffer);
  return other.length === bytes.length && other.every((value, i) => value === bytes[i]);
};

const timeout = (promise, ms) => Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error("timed out")), ms))]);

// Subscribes this browser and tells the server (again on every load: an endpoint goes to the
// account that posts it last). False when push is not to be had here.
async function subscribe() {
  const ready = registration || (await register());
  if (!ready?.pushManager) return false;
  const key = await api("GET", "/api/push/key");
  if (!key.ok || !key.data?.public_key) return false;
  let subscription;
  try {
    const applicationServerKey = keyBytes(key.data.public_key);
    subscription = await ready.pushManager.getSubscription();
    if (subscription && !sameBytes(subscription.options?.applicationServerKey, applicationServerKey)) {
      await subscription.unsubscribe(); // made with an earlier key: the server cannot use it
      subscription = null;
    }
    subscription ||= await timeout(ready.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey }), SUBSCRIBE_TIMEOUT_MS);
  } catch (error) {
    console.info("No Web Push here; notifications come from the open tab:", error?.message || error);
    return false;
  }
  const { endpoint, keys } = subscription.toJSON();
  const saved = await api("POST", "/api/push/subscriptions", { endpoint, keys: { p256dh: keys.p256dh, auth: keys.auth } });
  return saved.ok;
}

async function unsubscribe() {
  const subscription = await registration?.pushManager?.getSubscription().catch(() => null);
  if (!subscription) return;
  await api("DELETE", "/api/push/subscriptions", { endpoint: subscription.endpoint });
  await subscription.unsubscribe().catch(() => null);
}

async function enable() {
  if (!supported) return;
  setMode("working");
  let permission = Notification.permission;
  if (permission === "default") permission = await Notification.requestPermission();
  if (permission !== "granted") { setMode(permission === "denied" ? "blocked" : "off"); return; }
  choose("on");
  setMode((await subscribe()) ? "push" : "page");
}

async function disable() {
  choose("off");
  setMode("working");
  await unsubscribe();
  setMode("off");
}

function setMode(next) {
  mode = next;
  render();
  emit("desktop-notifications", mode);
}

const STATES = {
  unsupported: { text: "This browser cannot show desktop notifications here." },
  blocked: { text: "Desktop notifications are blocked by the browser: allow them in this site's settings." },
  off: { button: "Enable desktop notifications", action: enable },
  working: { button: "Turning on…" },
  push: { text: "🖥 Desktop notifications on", button: "Turn off", action: disable },
  page: { text: "🖥 Desktop notifications on (while this tab is open)", button: "Turn off", action: disable },
};

// The switch at the top of the notifications panel (its box is drawn with the panel).
function render() {
  const box = $("desktop-notify");
  if (!box) return;
  const state = STATES[mode] || STATES.off;
  box.dataset.state = mode;
  box.replaceChildren(
    state.text ? el("span", { class: "desktop-notify-state", role: "status" }, state.text) : "",
    state.button ? el("button", { type: "button", class: mode === "off" ? "" : "link", id: "desktop-notify-button",
      disabled: !state.action, onclick: state.action }, state.button) : "");
}

// A stream notice, shown by the page itself when push is not at hand and nobody is looking.
async function showFromPage(notice) {
  if (mode !== "page" || !document.hidden || dndActive() || Notification.permission !== "granted") return;
  if (app.rooms.get(notice.room_id)?.muted) return;
  const url = new URL(`/chat/${notice.room_id}/`, location.origin);
  if (notice.message_id) url.searchParams.set("message", notice.message_id);
  url.searchParams.set("notification", notice.id);
  const title = panels.noticeText(notice);
  const options = { body: notice.excerpt || "", tag: `room-${notice.room_id}`, renotify: true,
    data: { url: url.href, room_id: notice.room_id, message_id: notice.message_id || null, notification_id: notice.id, type: notice.type } };
  try {
    if (registration) { await registration.showNotification(title, options); return; } // clicks: the worker's
  } catch { /* the page's own Notification below */ }
  try {
    const shown = new Notification(title, options);
    shown.onclick = () => { window.focus(); shown.close(); openNotificationUrl(url.href); };
  } catch { /* Notification() may only be built by a worker in some browsers */ }
}

// /chat/<room>/?message=<id>&notification=<id> opened in this tab: the room (around the message),
// with no reload; the notice is read.
export function openNotificationUrl(href) {
  let url;
  try { url = new URL(href, location.href); } catch { return; }
  if (url.origin !== location.origin) return;
  const notice = url.searchParams.get("notification");
  if (notice) panels.noticeOpened(notice);
  const match = url.pathname.match(/^\/chat\/(\d+)\/?$/);
  if (!match) return;
  const roomId = match[1];
  emit("open-room", { roomId, messageId: url.searchParams.get("message"), reloadRooms: !app.rooms.has(roomId) });
}

// A window the worker opened (no tab was open): the notice in its address is read, and the
// address is cleaned (the server rendered the room already).
function noticeInAddress() {
  const params = new URLSearchParams(location.search);
  const notice = params.get("notification");
  if (!notice) return;
  panels.noticeOpened(notice);
  params.delete("notification");
  const query = params.toString();
  history.replaceState(history.state, "", `${location.pathname}${query ? `?${query}` : ""}${location.hash}`);
}

async function start() {
  await register();
  if (!supported) { render(); return; }
  if (Notification.permission === "denied") { setMode("blocked"); return; }
  if (Notification.permission === "granted" && choice() === "on") {
    // Already allowed: notices show from the page at once, from push once subscribed.
    setMode("page");
    if (await subscribe()) setMode("push");
    return;
  }
  setMode("off");
}

async function watchPermission() {
  if (!supported || !navigator.permissions) return;
  try {
    const status = await navigator.permissions.query({ name: "notifications" });
    status.addEventListener("change", () => {
      if (Notification.permission === "denied") setMode("blocked");
      else if (Notification.permission === "default" || choice() !== "on") setMode("off");
      else if (mode === "blocked" || mode === "off") enable();
    });
  } catch { /* not every browser can be asked */ }
}

export function install() {
  noticeInAddress();
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.addEventListener("message", (event) => {
      if (event.origin && event.origin !== location.origin) return;
      if (event.data?.type === "open-notification") openNotificationUrl(event.data.url);
    });
    navigator.serviceWorker.startMessages();
  }
  on("notice-arrived", showFromPage);
  on("notifications-shown", render);
  // Signing out: this browser stops receiving the account's pushes.
  const logout = document.querySelector('form[action="/logout/"]');
  logout?.addEventListener("submit", async (event) => {
    if (mode !== "push" || logout.dataset.unsubscribed) return;
    event.preventDefault();
    await timeout(unsubscribe(), 3000).catch(() => null);
    logout.dataset.unsubscribed = "true";
    logout.submit();
  });
  // After the page's own requests: the worker is not needed for the first paint.
  if (document.readyState === "complete") start(); else window.addEventListener("load", start, { once: true });
  watchPermission();
}
