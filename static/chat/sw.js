// The chat's service worker, served at /sw.js with the scope "/" (chatproject/pages.py). It shows
// what the server sends by Web Push, and a click on one opens its room: in a chat tab already open
// (focused, then told by postMessage to open the room without a reload, keeping its socket and
// outbox), or in a new window. A plain script: no imports, no caching, no fetch handler (so the
// pages' own requests never pass through it).
"use strict";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
// A page loaded during activation may not be claimed by it (static/chat/js/push.js asks again).
self.addEventListener("message", (event) => {
  if (event.data?.type === "claim") event.waitUntil(self.clients.claim());
});

// The push message: {title, body, url, tag, notification_id, room_id, message_id, type}.
function readPush(event) {
  if (!event.data) return {};
  try { return event.data.json() || {}; } catch { return { body: event.data.text() }; }
}

// The address a click opens: the payload's (same origin only), naming the notice so that the page
// marks it read.
function target(data) {
  let url;
  try { url = new URL(data.url || "/chat/", self.location.origin); } catch { url = new URL("/chat/", self.location.origin); }
  if (url.origin !== self.location.origin) url = new URL("/chat/", self.location.origin);
  if (data.notification_id) url.searchParams.set("notification", data.notification_id);
  return url.href;
}

self.addEventListener("push", (event) => {
  const data = readPush(event);
  const options = {
    body: data.body || "",
    data: { url: target(data), room_id: data.room_id || null, message_id: data.message_id || null,
      notification_id: data.notification_id || null, type: data.type || null },
  };
  // One notification per room: a newer one replaces it, and still makes a sound.
  if (data.tag) { options.tag = data.tag; options.renotify = true; }
  // Always shown, also when a focused tab shows that room: the subscription is userVisibleOnly, so
  // every push must show a notification (or the browser shows a generic one of its own).
  const shown = self.registration.showNotification(data.title || "Chat", options).catch((error) => {
    console.error("The push could not be shown:", error);
    throw error;
  });
  event.waitUntil(shown);
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = event.notification.data?.url || new URL("/chat/", self.location.origin).href;
  event.waitUntil(openChat(url));
});

async function openChat(url) {
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const ours = windows.filter((client) => new URL(client.url).origin === self.location.origin);
  const isChat = (client) => new URL(client.url).pathname.startsWith("/chat/");
  const rank = (client) => (isChat(client) ? 4 : 0) + (client.focused ? 2 : 0) + (client.visibilityState === "visible" ? 1 : 0);
  ours.sort((a, b) => rank(b) - rank(a));
  const best = ours[0];
  if (best && isChat(best)) {
    // The chat page opens the room itself (static/chat/js/push.js), with no reload.
    const focused = await best.focus().catch(() => best);
    (focused || best).postMessage({ type: "open-notification", url });
    return;
  }
  if (best) {
    // Another page of this site (sign-in, the API docs): it becomes the room.
    const moved = await best.navigate(url).catch(() => null);
    if (moved) { await moved.focus().catch(() => null); return; }
  }
  await self.clients.openWindow(url);
}
