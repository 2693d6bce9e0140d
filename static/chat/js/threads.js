// A thread in the side panel: its first message on top, the replies under it, and a composer of
// its own (on a phone, a full screen with a back button).
import { api, detail } from "./api.js";
import { $, el } from "./dom.js";
import { attachComposer } from "./composer.js";
import { renderMessage, renderPending } from "./message_view.js";
import * as outbox from "./outbox.js";
import { body, closeSide, openSide, sideIs } from "./side.js";
import { on } from "./state.js";
import { upsert, view } from "./timeline.js";

let threadOf = null;

export async function openThread(messageId) {
  threadOf = messageId;
  openSide("thread", "Thread");
  render();
  $("thread-input").focus();
  let after = null;
  for (let page = 0; page < 20; page += 1) { // up to 4,000 replies; the rest arrive live
    const query = after ? `?after=${after}&limit=200` : "?limit=200";
    const result = await api("GET", `/api/messages/${messageId}/thread${query}`);
    if (threadOf !== messageId) return;
    if (!result.ok) { body().replaceChildren(el("p", { class: "form-error" }, detail(result, "This thread cannot be shown."))); return; }
    for (const message of result.data.results) upsert(message);
    render();
    if (!result.data.next || !result.data.results.length) break;
    after = result.data.results[result.data.results.length - 1].seq;
  }
}

export function render() {
  if (!threadOf || !sideIs("thread")) return;
  const parent = view.messages.get(threadOf);
  const replies = [...view.messages.values()].filter((m) => m.parent_id === threadOf).sort((a, b) => a.seq - b.seq);
  const count = parent?.reply_count ?? replies.length;
  const list = body();
  const atEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 48;
  list.replaceChildren(
    parent ? el("div", { class: "thread-parent" }, renderMessage(parent, { inThread: true })) : el("p", { class: "hint" }, "Loading…"),
    el("p", { class: "thread-count" }, `${count} repl${count === 1 ? "y" : "ies"}`),
    ...replies.map((reply) => renderMessage(reply, { inThread: true })),
    ...outbox.pendingIn(view.roomId, threadOf).map(renderPending));
  if (atEnd) list.scrollTop = list.scrollHeight;
}

export const currentThread = () => (sideIs("thread") ? threadOf : null);

export function install() {
  attachComposer($("thread-composer"), $("thread-input"), () => threadOf);
  on("thread", (messageId) => openThread(messageId));
  on("side-closed", (kind) => { if (kind === "thread") threadOf = null; });
  on("room-closed", () => { if (sideIs("thread")) closeSide(); });
}
