// One message as the list and the thread panel draw it, with its actions.
import { api, detail } from "./api.js";
import { confirmAction } from "./dialogs.js";
import { $, avatar, displayName, el, formatSize, fullTime, showError, shortTime } from "./dom.js";
import { pickEmoji } from "./emoji.js";
import { app, emit, isModerator } from "./state.js";
import * as outbox from "./outbox.js";

let editing = null; // the message being edited: {id, text} (the text survives redraws)

function body(message) {
  const node = el("div", { class: "body" });
  if (message.deleted) node.append(el("em", { class: "deleted" }, "message deleted"));
  else node.innerHTML = message.html; // rendered and sanitised (nh3) by the server
  return node;
}

function attachments(message) {
  if (!message.attachments?.length) return null;
  return el("div", { class: "attachments" }, ...message.attachments.map((file) => {
    if (file.thumbnail_url) {
      return el("a", { href: file.url, target: "_blank", rel: "noopener", class: "thumb" },
        el("img", { src: file.thumbnail_url, alt: file.name, loading: "lazy", onload: () => emit("image-loaded") }));
    }
    return el("a", { href: file.url, class: "file", download: file.name }, `📄 ${file.name} (${formatSize(file.size)})`);
  }));
}

async function react(message, emoji, add) {
  const result = await api(add ? "POST" : "DELETE", `/api/messages/${message.id}/react`, { emoji });
  if (result.ok) emit("message", result.data);
  else emit("error", detail(result, "Could not react."));
}

async function remove(message) {
  const own = message.author.id === app.me.id;
  const ok = await confirmAction(own ? "Delete this message?" : `Delete ${displayName(message.author)}'s message?`);
  if (!ok) return;
  const result = await api("DELETE", `/api/messages/${message.id}`);
  if (!result.ok) emit("error", detail(result, "Could not delete."));
}

function editor(message) {
  const area = el("textarea", { class: "edit-input", "aria-label": "Edit message", rows: "2" });
  area.value = editing.text ?? message.body;
  const remember = () => { if (editing) Object.assign(editing, { text: area.value, caret: area.selectionStart }); };
  area.addEventListener("input", remember);
  area.addEventListener("keyup", remember);
  area.addEventListener("click", remember);
  const error = el("p", { class: "form-error", role: "alert", hidden: true });
  const stop = () => { editing = null; emit("redraw"); };
  const save = async () => {
    const text = area.value;
    if (!text.trim() || text === message.body) { stop(); return; }
    const result = await api("PUT", `/api/messages/${message.id}`, { body: text });
    if (!result.ok) { showError(error, detail(result, "Could not save the edit.")); return; }
    editing = null;
    emit("message", result.data);
  };
  area.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); save(); }
    if (event.key === "Escape") { event.stopPropagation(); stop(); $("message-input").focus(); }
  });
  setTimeout(() => {
    area.focus();
    const caret = editing?.caret ?? area.value.length;
    area.setSelectionRange(caret, caret);
  }, 0);
  return el("div", { class: "editor" }, area, error, el("small", { class: "hint" }, "Enter saves · Esc cancels"));
}

export function renderMessage(message, { grouped = false, inThread = false } = {}) {
  const mine = message.author.id === app.me.id;
  const classes = ["message"];
  if (grouped) classes.push("grouped");
  if (mine) classes.push("mine");
  // Focusable: on a phone (no hover) a tap on the message shows its actions.
  const edited = message.edited_at && !message.deleted
    ? el("button", { type: "button", class: "link edited", onclick: () => emit("history", message), "aria-label": "Show edit history" }, "(edited)")
    : null;
  const node = el("article", { class: classes.join(" "), id: inThread ? null : `m-${message.id}`, "data-id": message.id, "data-seq": message.seq, tabindex: "-1" },
    avatar(message.author),
    el("header", {},
      el("strong", { class: "author" }, displayName(message.author)),
      el("time", { datetime: message.created_at, title: fullTime(message.created_at) }, shortTime(message.created_at)),
      grouped ? null : edited));
  node.append(editing?.id === message.id ? editor(message) : body(message));
  if (grouped && edited) node.append(edited); // a grouped message's header is hidden: the mark goes under it
  node.append(attachments(message) || "");
  if (message.deleted) return node;
  if (message.reactions.length) {
    node.append(el("div", { class: "reactions" }, ...message.reactions.map((r) => {
      const reacted = r.users.includes(app.me.id);
      return el("button", { type: "button", class: reacted ? "reaction mine" : "reaction", "aria-pressed": String(reacted),
        title: reacted ? "Take your reaction back" : "React the same", onclick: () => react(message, r.emoji, !reacted) }, `${r.emoji} ${r.count}`);
    })));
  }
  if (!inThread && !message.parent_id && message.reply_count) {
    node.append(el("footer", { class: "thread-link" },
      el("button", { type: "button", class: "link", onclick: () => emit("thread", message.id) },
        `${message.reply_count} repl${message.reply_count === 1 ? "y" : "ies"}`)));
  }
  const emojiButton = el("button", { type: "button", class: "link", "aria-label": "Add a reaction", title: "Add a reaction" }, "☺+");
  emojiButton.addEventListener("click", () => pickEmoji(emojiButton, (emoji) => react(message, emoji, true)));
  node.append(el("div", { class: "actions", role: "toolbar", "aria-label": "Message actions" },
    el("button", { type: "button", class: "link", onclick: () => react(message, "👍", true), "aria-label": "React with thumbs up" }, "👍"),
    emojiButton,
    !inThread && !message.parent_id
      ? el("button", { type: "button", class: "link", onclick: () => emit("thread", message.id), "aria-label": "Reply in thread" }, "Reply")
      : null,
    mine ? el("button", { type: "button", class: "link", onclick: () => { editing = { id: message.id, text: null }; emit("redraw"); } }, "Edit") : null,
    mine || isModerator() ? el("button", { type: "button", class: "link danger-link", onclick: () => remove(message) }, "Delete") : null));
  return node;
}

export function renderPending(item) {
  const failedNow = item.status === "failed";
  return el("article", { class: `message mine pending ${item.status}`, "data-client-id": item.clientId },
    avatar(app.me),
    el("header", {}, el("strong", { class: "author" }, displayName(app.me)),
      el("span", { class: "sending" }, failedNow ? `not sent: ${item.error || "error"}` : "sending…")),
    el("div", { class: "body" }, item.body),
    failedNow
      ? el("div", { class: "pending-actions" },
        el("button", { type: "button", class: "link", onclick: () => outbox.retry(item.clientId) }, "Retry"),
        el("button", { type: "button", class: "link", onclick: () => outbox.discard(item.clientId) }, "Discard"))
      : null);
}
