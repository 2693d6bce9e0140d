// The web chat: plain JavaScript over the same REST API and WebSocket protocol as mobile clients.
// Nothing typed is lost: every send carries a client_id and waits in an outbox until its ack,
// and a dropped socket reconnects by itself with backoff and resumes with ?since=<version>.
(() => {
  "use strict";

  const config = JSON.parse(document.getElementById("chat-config").textContent);
  const me = config.user;
  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  };
  const csrf = () => (document.cookie.match(/(?:^|; )csrftoken=([^;]+)/) || [])[1] || "";
  const newClientId = () => (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`);

  async function api(method, path, body, headers = {}) {
    const options = { method, credentials: "same-origin", headers: { "X-CSRFToken": csrf(), ...headers } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    if (response.status === 401) window.location = `/login/?next=${encodeURIComponent(location.pathname)}`;
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    return { ok: response.ok, status: response.status, data, response };
  }

  // --- state --------------------------------------------------------------------------------------
  const state = {
    rooms: new Map(),
    roomId: null,
    messages: new Map(),   // id -> Message (top-level and replies)
    pending: new Map(),    // client_id -> {body, parent_id, status}
    minSeq: null,
    lastSeq: 0,
    version: 0,
    socket: null,
    attempt: 0,
    reconnectTimer: null,
    online: new Set(),
    typing: new Map(),
    replyTo: null,
    threadOf: null,
    editing: null,
    loadingOlder: false,
    typingSentAt: 0,
  };

  // --- rooms ----------------------------------------------------------------------------------------
  async function loadRooms() {
    const { ok, data } = await api("GET", "/api/rooms/");
    if (!ok) return;
    state.rooms = new Map(data.results.map((room) => [room.id, room]));
    renderRooms();
  }

  function renderRooms() {
    const list = $("room-list");
    list.replaceChildren();
    for (const room of state.rooms.values()) {
      const unread = room.id === state.roomId ? 0 : room.unread_count;
      list.append(el("li", {},
        el("a", { href: `/chat/${room.id}/`, class: room.id === state.roomId ? "room active" : "room", "data-room-id": room.id,
                  onclick: (event) => { event.preventDefault(); openRoom(room.id, true); } },
          el("span", { class: "room-name" }, `${room.is_private ? "🔒 " : "# "}${room.name}`),
          unread ? el("span", { class: "badge", "aria-label": `${unread} unread` }, String(unread)) : null)));
    }
  }

  $("create-room-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("new-room-name").value.trim();
    if (!name) return;
    const { ok, data } = await api("POST", "/api/rooms/", { name, is_private: $("new-room-private").checked });
    if (ok) { $("new-room-name").value = ""; state.rooms.set(data.id, data); openRoom(data.id, true); }
    else alert(data?.detail || "Could not create the room.");
  });

  $("join-room-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const id = $("join-room-id").value.trim();
    const { ok, data } = await api("POST", `/api/rooms/${encodeURIComponent(id)}/join`);
    if (ok) { $("join-room-id").value = ""; state.rooms.set(data.id, data); openRoom(data.id, true); }
    else alert(data?.detail || "Could not join that room.");
  });

  $("leave-button").addEventListener("click", async () => {
    if (!state.roomId || !confirm("Leave this room?")) return;
    const { ok, data } = await api("DELETE", `/api/rooms/${state.roomId}/members/${me.id}`);
    if (!ok) { alert(data?.detail || "Could not leave."); return; }
    closeSocket();
    state.rooms.delete(state.roomId);
    state.roomId = null;
    history.pushState(null, "", "/chat/");
    showEmptyPane();
    renderRooms();
  });

  // --- opening a room -------------------------------------------------------------------------------
  function showEmptyPane() {
    $("room-title").textContent = "Pick a room";
    $("messages").replaceChildren();
    $("composer").hidden = true;
    $("members-button").hidden = $("leave-button").hidden = true;
    document.body.classList.remove("room-open");
    setStatus("");
  }

  async function openRoom(roomId, push) {
    closeSocket();
    Object.assign(state, {
      roomId, messages: new Map(), minSeq: null, lastSeq: 0, version: 0, attempt: 0,
      online: new Set(), typing: new Map(), replyTo: null, editing: null,
    });
    for (const [clientId, item] of state.pending) if (item.roomId !== roomId) state.pending.delete(clientId);
    if (push) history.pushState(null, "", `/chat/${roomId}/`);
    document.body.classList.add("room-open");
    const room = state.rooms.get(roomId);
    $("room-title").textContent = room ? room.name : `Room ${roomId}`;
    $("composer").hidden = false;
    $("members-button").hidden = $("leave-button").hidden = false;
    $("messages").replaceChildren(el("p", { class: "hint" }, "Loading…"));
    renderRooms();
    const { ok, data, status } = await api("GET", `/api/messages/${roomId}?limit=50`);
    if (state.roomId !== roomId) return;
    if (!ok) {
      $("messages").replaceChildren(el("p", { class: "hint" }, status === 403 ? "Join this room to read it." : "No such room."));
      $("composer").hidden = true;
      return;
    }
    addMessages(data.results);
    state.minSeq = data.results.length ? data.results[0].seq : null;
    renderMessages(true);
    loadPresence();
    connect();
    $("message-input").focus();
  }

  function addMessages(messages) {
    for (const message of messages) upsert(message);
  }

  function upsert(message) {
    const known = state.messages.get(message.id);
    if (known && known.version >= message.version) return false;
    state.messages.set(message.id, message);
    state.version = Math.max(state.version, message.version);
    if (!message.parent_id) state.lastSeq = Math.max(state.lastSeq, message.seq);
    if (message.client_id && message.author.id === me.id) state.pending.delete(message.client_id);
    return true;
  }

  // --- rendering messages ---------------------------------------------------------------------------
  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

  function renderMessages(stickToBottom) {
    const pane = $("messages");
    const atBottom = stickToBottom || pane.scrollHeight - pane.scrollTop - pane.clientHeight < 80;
    const previousHeight = pane.scrollHeight;
    const previousTop = pane.scrollTop;
    const topLevel = [...state.messages.values()].filter((m) => !m.parent_id).sort((a, b) => a.seq - b.seq);
    const nodes = topLevel.map(renderMessage);
    for (const [clientId, item] of state.pending) {
      if (item.roomId === state.roomId && !item.parent_id) nodes.push(renderPending(clientId, item));
    }
    if (state.minSeq !== null && state.minSeq > 1) nodes.unshift(el("p", { class: "hint" }, "Scroll up for older messages"));
    if (!nodes.length) nodes.push(el("p", { class: "hint" }, "No messages yet. Say hello!"));
    pane.replaceChildren(...nodes);
    if (atBottom) pane.scrollTop = pane.scrollHeight;
    else pane.scrollTop = previousTop + (pane.scrollHeight - previousHeight) * (state.loadingOlder ? 1 : 0);
    if (state.threadOf) renderThread();
  }

  function renderBody(message) {
    const body = el("div", { class: "body" });
    if (message.deleted) body.append(el("em", { class: "deleted" }, "message deleted"));
    else body.innerHTML = message.html; // rendered and sanitised (nh3) by the server
    return body;
  }

  function renderAttachments(message) {
    if (!message.attachments?.length) return null;
    return el("div", { class: "attachments" }, ...message.attachments.map((file) => {
      const label = `${file.name} (${formatSize(file.size)})`;
      if (file.thumbnail_url) {
        return el("a", { href: file.url, target: "_blank", rel: "noopener", class: "thumb" },
          el("img", { src: file.thumbnail_url, alt: file.name, loading: "lazy" }));
      }
      return el("a", { href: file.url, class: "file", download: file.name }, `📄 ${label}`);
    }));
  }

  function formatSize(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KB`;
    if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
    return `${(bytes / 1024 ** 3).toFixed(2)} GB`;
  }

  function renderMessage(message) {
    const mine = message.author.id === me.id;
    const node = el("article", { class: `message${mine ? " mine" : ""}`, "data-id": message.id, "data-seq": message.seq },
      el("header", {},
        el("strong", { class: "author" }, message.author.display_name || message.author.username),
        el("time", { datetime: message.created_at }, timeFormat.format(new Date(message.created_at))),
        message.edited_at && !message.deleted
          ? el("button", { class: "link edited", onclick: () => showEditHistory(message), "aria-label": "Show edit history" }, "(edited)")
          : null));
    if (state.editing === message.id) node.append(renderEditor(message));
    else node.append(renderBody(message));
    node.append(renderAttachments(message) || "");
    if (!message.deleted) {
      const reactions = el("div", { class: "reactions" }, ...message.reactions.map((r) =>
        el("button", { class: r.users.includes(me.id) ? "reaction mine" : "reaction", title: `${r.count}`,
                       onclick: () => react(message, r.emoji, !r.users.includes(me.id)) }, `${r.emoji} ${r.count}`)));
      node.append(reactions);
      const actions = el("div", { class: "actions" },
        el("button", { class: "link", onclick: () => react(message, "👍", true), "aria-label": "React with thumbs up" }, "👍"),
        el("button", { class: "link", onclick: () => pickReaction(message), "aria-label": "React" }, "☺+"),
        el("button", { class: "link", onclick: () => openThread(message.id) },
          message.reply_count ? `${message.reply_count} repl${message.reply_count === 1 ? "y" : "ies"}` : "Reply"),
        mine ? el("button", { class: "link", onclick: () => startEdit(message.id) }, "Edit") : null,
        mine ? el("button", { class: "link", onclick: () => removeMessage(message) }, "Delete") : null);
      node.append(actions);
    }
    return node;
  }

  function renderPending(clientId, item) {
    return el("article", { class: `message mine pending ${item.status}`, "data-client-id": clientId },
      el("header", {}, el("strong", { class: "author" }, me.display_name || me.username),
        el("span", { class: "sending" }, item.status === "failed" ? `not sent: ${item.error || "error"}` : "sending…")),
      el("div", { class: "body" }, item.body),
      item.status === "failed" ? el("button", { class: "link", onclick: () => { item.status = "queued"; flushOutbox(); renderMessages(); } }, "Retry") : null);
  }

  function renderEditor(message) {
    const area = el("textarea", { class: "edit-input", "aria-label": "Edit message", rows: "2" });
    area.value = message.body;
    const save = async () => {
      const body = area.value;
      state.editing = null;
      if (body.trim() && body !== message.body) {
        const { ok, data } = await api("PUT", `/api/messages/${message.id}`, { body });
        if (ok) upsert(data); else alert(data?.detail || "Could not save the edit.");
      }
      renderMessages();
    };
    area.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); save(); }
      if (event.key === "Escape") { state.editing = null; renderMessages(); $("message-input").focus(); }
    });
    setTimeout(() => area.focus(), 0);
    return el("div", { class: "editor" }, area, el("small", {}, "Enter saves · Esc cancels"));
  }

  function startEdit(id) { state.editing = id; renderMessages(); }

  async function removeMessage(message) {
    if (!confirm("Delete this message?")) return;
    const { ok, data } = await api("DELETE", `/api/messages/${message.id}`);
    if (!ok) alert(data?.detail || "Could not delete.");
  }

  async function react(message, emoji, add) {
    const { ok, data } = await api(add ? "POST" : "DELETE", `/api/messages/${message.id}/react`, { emoji });
    if (ok) { upsert(data); renderMessages(); }
  }

  function pickReaction(message) {
    const emoji = prompt("React with which emoji?", "🎉");
    if (emoji) react(message, emoji.trim(), true);
  }

  // --- older history --------------------------------------------------------------------------------
  $("messages").addEventListener("scroll", async () => {
    const pane = $("messages");
    if (pane.scrollTop > 60 || state.loadingOlder || state.minSeq === null || state.minSeq <= 1) return;
    state.loadingOlder = true;
    const roomId = state.roomId;
    const { ok, data } = await api("GET", `/api/messages/${roomId}?before=${state.minSeq}&limit=50`);
    if (ok && roomId === state.roomId) {
      addMessages(data.results);
      if (data.results.length) state.minSeq = data.results[0].seq;
      else state.minSeq = 1;
      renderMessages();
    }
    state.loadingOlder = false;
  });

  // --- the socket -----------------------------------------------------------------------------------
  function setStatus(text, kind = "") {
    const status = $("connection-status");
    status.textContent = text;
    status.className = `status ${kind}`;
  }

  function closeSocket() {
    clearTimeout(state.reconnectTimer);
    if (state.socket) {
      state.socket.onclose = null;
      state.socket.close(1000);
      state.socket = null;
    }
  }

  function connect() {
    const roomId = state.roomId;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/api/ws/${roomId}?since=${state.version}`);
    state.socket = socket;
    setStatus(state.attempt ? "Reconnecting…" : "Connecting…", "warn");
    socket.onopen = () => {
      state.attempt = 0;
      setStatus("Connected", "ok");
      state.online.add(me.id);
      renderPresence();
      // Sends that never got their ack go again with the same client_id: the server answers
      // with the message it already stored, so nothing is doubled.
      for (const item of state.pending.values()) if (item.status === "sent" && !item.viaRest) item.status = "queued";
      flushOutbox();
    };
    socket.onmessage = (event) => {
      if (state.socket !== socket) return;
      handleFrame(JSON.parse(event.data));
    };
    socket.onclose = (event) => {
      if (state.socket !== socket) return;
      state.socket = null;
      if (event.code === 4401) { window.location = `/login/?next=${encodeURIComponent(location.pathname)}`; return; }
      if (event.code === 4403 || event.code === 4404) { setStatus("You no longer have access to this room.", "error"); return; }
      const delay = Math.min(10000, 500 * 2 ** state.attempt) * (0.75 + Math.random() / 2);
      state.attempt += 1;
      setStatus(`Offline — reconnecting in ${Math.ceil(delay / 1000)} s`, "error");
      state.reconnectTimer = setTimeout(() => { if (state.roomId === roomId) connect(); }, delay);
    };
  }

  function handleFrame(frame) {
    switch (frame.type) {
      case "message.new":
      case "message.updated": {
        const changed = upsert(frame.message);
        if (changed) {
          renderMessages();
          if (frame.type === "message.new" && document.visibilityState === "visible") markRead();
        }
        break;
      }
      case "message.ack":
        state.pending.delete(frame.client_id);
        upsert(frame.message);
        renderMessages();
        break;
      case "sync.done":
        state.version = Math.max(state.version, frame.version);
        markRead();
        break;
      case "typing":
        if (frame.user.id === me.id) break;
        if (frame.state === "start") state.typing.set(frame.user.id, { name: frame.user.display_name || frame.user.username, at: Date.now() });
        else state.typing.delete(frame.user.id);
        renderTyping();
        break;
      case "presence":
        if (frame.status === "online") state.online.add(frame.user.id); else state.online.delete(frame.user.id);
        renderPresence();
        break;
      case "error": {
        const item = frame.client_id && state.pending.get(frame.client_id);
        if (item) { item.status = "failed"; item.error = frame.detail; renderMessages(); }
        break;
      }
      default:
        break;
    }
  }

  function flushOutbox() {
    const socket = state.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    for (const [clientId, item] of state.pending) {
      if (item.roomId !== state.roomId || item.status !== "queued" || item.viaRest) continue;
      const frame = { type: "message.send", body: item.body, client_id: clientId };
      if (item.parent_id) frame.parent_id = item.parent_id;
      socket.send(JSON.stringify(frame));
      item.status = "sent";
    }
  }

  function renderTyping() {
    const now = Date.now();
    for (const [id, entry] of state.typing) if (now - entry.at > 8000) state.typing.delete(id);
    const names = [...state.typing.values()].map((entry) => entry.name);
    $("typing").textContent = names.length ? `${names.join(", ")} ${names.length === 1 ? "is" : "are"} typing…` : "";
  }
  setInterval(renderTyping, 2000);

  async function loadPresence() {
    const roomId = state.roomId;
    const { ok, data } = await api("GET", `/api/rooms/${roomId}/presence`);
    if (ok && roomId === state.roomId) {
      state.online = new Set(data.results.map((user) => user.id));
      renderPresence();
    }
  }

  function renderPresence() {
    const room = state.rooms.get(state.roomId);
    const base = room ? room.name : `Room ${state.roomId}`;
    $("room-title").textContent = base;
    $("room-title").append(el("small", { class: "online" }, ` · ${state.online.size} online`));
  }

  let readTimer = null;
  function markRead() {
    clearTimeout(readTimer);
    const roomId = state.roomId;
    const seq = state.lastSeq;
    readTimer = setTimeout(() => {
      if (seq > 0) api("POST", `/api/rooms/${roomId}/read`, { seq });
      const room = state.rooms.get(roomId);
      if (room) room.unread_count = 0;
    }, 500);
  }

  // --- composing ------------------------------------------------------------------------------------
  const input = $("message-input");
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); $("composer").requestSubmit(); }
    if (event.key === "Escape") cancelReply();
  });
  input.addEventListener("input", () => {
    input.style.height = "auto";
    input.style.height = `${Math.min(200, input.scrollHeight)}px`;
    const now = Date.now();
    if (now - state.typingSentAt > 3000 && state.socket?.readyState === WebSocket.OPEN) {
      state.socket.send(JSON.stringify({ type: "typing", state: "start" }));
      state.typingSentAt = now;
    }
  });

  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const body = input.value;
    if (!body.trim()) return;
    if (body.length > config.max_body) { alert(`At most ${config.max_body} characters.`); return; }
    send(body, state.replyTo);
    input.value = "";
    input.style.height = "auto";
    if (state.socket?.readyState === WebSocket.OPEN) state.socket.send(JSON.stringify({ type: "typing", state: "stop" }));
    state.typingSentAt = 0;
    cancelReply();
  });

  function send(body, parentId) {
    const clientId = newClientId();
    state.pending.set(clientId, { roomId: state.roomId, body, parent_id: parentId, status: "queued" });
    renderMessages(true);
    flushOutbox();
  }

  function cancelReply() {
    state.replyTo = null;
    $("reply-banner").hidden = true;
  }
  $("cancel-reply").addEventListener("click", cancelReply);

  // --- threads --------------------------------------------------------------------------------------
  async function openThread(messageId) {
    state.threadOf = messageId;
    state.replyTo = messageId;
    $("reply-banner").hidden = false;
    $("reply-banner").querySelector("span").textContent = "Replying in thread";
    openSide("Thread");
    const { ok, data } = await api("GET", `/api/messages/${messageId}/thread?limit=200`);
    if (ok) addMessages(data.results);
    renderThread();
    input.focus();
  }

  function renderThread() {
    if (!state.threadOf || $("side-title").textContent !== "Thread") return;
    const parent = state.messages.get(state.threadOf);
    const replies = [...state.messages.values()].filter((m) => m.parent_id === state.threadOf).sort((a, b) => a.seq - b.seq);
    const pendingReplies = [...state.pending.entries()].filter(([, item]) => item.parent_id === state.threadOf)
      .map(([clientId, item]) => renderPending(clientId, item));
    $("side-body").replaceChildren(...(parent ? [renderMessage(parent)] : []), el("hr"),
      ...replies.map(renderMessage), ...pendingReplies);
  }

  function openSide(title) {
    $("side-title").textContent = title;
    $("side").hidden = false;
    document.body.classList.add("side-open");
  }
  function closeSide() {
    $("side").hidden = true;
    state.threadOf = null;
    document.body.classList.remove("side-open");
    cancelReply();
  }
  $("side-close").addEventListener("click", closeSide);
  document.addEventListener("keydown", (event) => { if (event.key === "Escape" && !$("side").hidden && document.activeElement === document.body) closeSide(); });

  // --- edit history and notifications ----------------------------------------------------------------
  async function showEditHistory(message) {
    openSide("Edit history");
    const { ok, data } = await api("GET", `/api/messages/${message.id}/history`);
    if (!ok) { $("side-body").replaceChildren(el("p", { class: "hint" }, data?.detail || "Not available.")); return; }
    $("side-body").replaceChildren(...data.results.map((record) => el("article", { class: "result" },
      el("header", {}, el("time", { datetime: record.written_at }, new Date(record.written_at).toLocaleString())),
      el("p", { class: "snippet" }, record.body))), el("article", { class: "result" }, el("header", {}, "now"), el("p", {}, message.body)));
  }

  async function loadNotificationCount() {
    const { ok, data } = await api("GET", "/api/notifications/?unread=true&limit=100");
    if (!ok) return;
    const badge = $("notification-count");
    badge.hidden = !data.results.length;
    badge.textContent = data.results.length >= 100 ? "99+" : String(data.results.length);
  }

  $("notifications-button").addEventListener("click", async () => {
    openSide("Notifications");
    const { ok, data } = await api("GET", "/api/notifications/?limit=50");
    if (!ok) return;
    const describe = { mention: "mentioned you", reply: "replied in your thread", invite: "added you to" };
    const items = data.results.map((notice) => {
      const room = state.rooms.get(notice.room_id);
      return el("article", { class: notice.read ? "result" : "result unread", tabindex: "0", onclick: async () => {
        await api("POST", "/api/notifications/read", { ids: [notice.id] });
        loadNotificationCount();
        if (!state.rooms.has(notice.room_id)) await loadRooms();
        openRoom(notice.room_id, true);
      } }, el("p", {}, `Someone ${describe[notice.type] || notice.type} `, el("em", {}, room ? room.name : `room ${notice.room_id}`)),
        el("time", { datetime: notice.created_at }, new Date(notice.created_at).toLocaleString()));
    });
    const markAll = el("button", { class: "link", onclick: async () => {
      await api("POST", "/api/notifications/read", { all: true });
      loadNotificationCount();
      $("notifications-button").click();
    } }, "Mark all read");
    $("side-body").replaceChildren(markAll, ...(items.length ? items : [el("p", { class: "hint" }, "Nothing yet.")]));
  });

  // --- members --------------------------------------------------------------------------------------
  $("members-button").addEventListener("click", async () => {
    const roomId = state.roomId;
    openSide("Members");
    const { ok, data } = await api("GET", `/api/rooms/${roomId}/members?limit=200`);
    if (!ok) return;
    const myRole = data.results.find((m) => m.user.id === me.id)?.role;
    const manager = myRole === "owner" || myRole === "admin";
    const rows = data.results.map((member) => el("li", {},
      el("span", { class: state.online.has(member.user.id) ? "dot online" : "dot", "aria-label": state.online.has(member.user.id) ? "online" : "offline" }),
      ` ${member.user.display_name || member.user.username} `,
      manager && member.user.id !== me.id
        ? roleSelect(roomId, member)
        : el("span", { class: "role" }, member.role)));
    const invite = manager ? el("form", { class: "inline-form", onsubmit: async (event) => {
      event.preventDefault();
      const name = event.target.querySelector("input").value.trim();
      const result = await api("POST", `/api/rooms/${roomId}/members`, { username: name });
      if (result.ok) $("members-button").click(); else alert(result.data?.detail || "Could not add.");
    } }, el("input", { placeholder: "Username to invite", "aria-label": "Username to invite", required: true }), el("button", { type: "submit" }, "Invite")) : null;
    const settings = manager ? roomSettings(roomId) : null;
    $("side-body").replaceChildren(el("ul", { class: "members" }, ...rows), invite || "", settings || "");
  });

  function roomSettings(roomId) {
    const room = state.rooms.get(roomId);
    const select = el("select", { "aria-label": "Who sees edit history", onchange: async () => {
      const result = await api("PATCH", `/api/rooms/${roomId}`, { edit_history_visibility: select.value });
      if (result.ok) state.rooms.set(roomId, result.data); else alert(result.data?.detail || "Not allowed.");
    } }, ...[["everyone", "everyone"], ["moderators", "owners and admins"]].map(([value, label]) =>
      el("option", { value, selected: room?.edit_history_visibility === value }, label)));
    return el("p", { class: "settings" }, "Edit history visible to ", select);
  }

  function roleSelect(roomId, member) {
    const select = el("select", { "aria-label": `Role of ${member.user.username}`, onchange: async () => {
      const result = await api("PATCH", `/api/rooms/${roomId}/members/${member.user.id}`, { role: select.value });
      if (!result.ok) { alert(result.data?.detail || "Not allowed."); select.value = member.role; }
    } }, ...["member", "admin", "owner"].map((role) => el("option", { value: role, selected: role === member.role }, role)));
    return select;
  }

  // --- search ---------------------------------------------------------------------------------------
  $("search-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const q = $("search-input").value.trim();
    if (!q) return;
    openSide("Search");
    $("side-body").replaceChildren(el("p", { class: "hint" }, "Searching…"));
    const { ok, data } = await api("GET", `/api/search?q=${encodeURIComponent(q)}`);
    if (!ok) { $("side-body").replaceChildren(el("p", { class: "form-error" }, data?.detail || "Search failed.")); return; }
    if (!data.results.length) { $("side-body").replaceChildren(el("p", { class: "hint" }, "Nothing found.")); return; }
    $("side-body").replaceChildren(...data.results.map((message) => {
      const room = state.rooms.get(message.room_id);
      return el("article", { class: "result", tabindex: "0", onclick: () => openRoom(message.room_id, true) },
        el("header", {}, el("strong", {}, message.author.username), " in ", el("em", {}, room ? room.name : message.room_id)),
        highlighted(message.body, message.highlights || []));
    }));
  });

  function highlighted(text, ranges) {
    const node = el("p", { class: "snippet" });
    let position = 0;
    for (const [start, end] of ranges) {
      node.append(text.slice(position, start), el("mark", {}, text.slice(start, end)));
      position = end;
    }
    node.append(text.slice(position));
    return node;
  }

  // --- files (tus, resumable) -------------------------------------------------------------------------
  $("file-input").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (!file || !state.roomId) return;
    const roomId = state.roomId;
    const progress = $("upload-progress");
    progress.hidden = false;
    const bar = progress.querySelector("progress");
    const label = progress.querySelector("span");
    try {
      const attachment = await tusUpload(roomId, file, (sent) => {
        bar.value = file.size ? Math.round((sent / file.size) * 100) : 100;
        label.textContent = `${file.name}: ${formatSize(sent)} of ${formatSize(file.size)}`;
      }, (text) => { label.textContent = text; });
      const body = input.value;
      input.value = "";
      const clientId = newClientId();
      state.pending.set(clientId, { roomId, body: body || file.name, status: "sent", viaRest: true });
      renderMessages(true);
      const posted = await postWithRetry(roomId, { body, attachments: [attachment.id], client_id: clientId });
      state.pending.delete(clientId);
      if (posted) upsert(posted);
      renderMessages(true);
    } catch (error) {
      alert(`Upload failed: ${error.message}`);
    } finally {
      progress.hidden = true;
    }
  });

  async function postWithRetry(roomId, payload) {
    for (let attempt = 0; attempt < 8; attempt += 1) {
      try {
        const { ok, data, status } = await api("POST", `/api/messages/${roomId}`, payload);
        if (ok) return data;
        if (status < 500) throw new Error(data?.detail || `HTTP ${status}`);
      } catch (error) {
        if (!(error instanceof TypeError)) throw error; // TypeError: the network; retry with the same client_id
      }
      await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** attempt));
    }
    throw new Error("the server stayed unreachable");
  }

  const toBase64 = (text) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));

  async function tusUpload(roomId, file, onProgress, onStatus) {
    const key = `tus:${roomId}:${file.name}:${file.size}:${file.lastModified}`;
    let location = localStorage.getItem(key);
    if (!location) {
      const { ok, status, data, response } = await api("POST", `/api/rooms/${roomId}/uploads/`, undefined, {
        "Tus-Resumable": "1.0.0",
        "Upload-Length": String(file.size),
        "Upload-Metadata": `filename ${toBase64(file.name)},filetype ${toBase64(file.type || "application/octet-stream")}`,
      });
      if (!ok) throw new Error(data?.detail || `HTTP ${status}`);
      location = response.headers.get("Location");
      localStorage.setItem(key, location);
    }
    let failures = 0;
    let offset = await headOffset(location);
    while (offset < file.size) {
      try {
        const chunk = file.slice(offset, offset + config.upload_chunk);
        offset = await patchChunk(location, offset, chunk, (sent) => onProgress(offset + sent));
        failures = 0;
        onProgress(offset);
      } catch (error) {
        failures += 1;
        if (failures > 12 || error.fatal) { localStorage.removeItem(key); throw error; }
        const wait = Math.min(10000, 500 * 2 ** failures);
        onStatus(`Connection lost, resuming in ${Math.ceil(wait / 1000)} s…`);
        await new Promise((resolve) => setTimeout(resolve, wait));
        offset = await headOffset(location).catch(() => offset);
      }
    }
    localStorage.removeItem(key);
    const { ok, data } = await api("GET", location);
    if (!ok) throw new Error(data?.detail || "the upload did not complete");
    return data;
  }

  async function headOffset(location) {
    const response = await fetch(location, { method: "HEAD", credentials: "same-origin", headers: { "Tus-Resumable": "1.0.0" } });
    if (!response.ok) throw Object.assign(new Error(`upload gone (HTTP ${response.status})`), { fatal: response.status === 404 });
    return Number(response.headers.get("Upload-Offset"));
  }

  function patchChunk(location, offset, chunk, onSent) {
    return new Promise((resolve, reject) => {
      const request = new XMLHttpRequest();
      request.open("PATCH", location);
      request.withCredentials = true;
      request.setRequestHeader("Tus-Resumable", "1.0.0");
      request.setRequestHeader("Upload-Offset", String(offset));
      request.setRequestHeader("Content-Type", "application/offset+octet-stream");
      request.setRequestHeader("X-CSRFToken", csrf());
      request.upload.onprogress = (event) => onSent(event.loaded);
      request.onload = () => {
        if (request.status === 204) resolve(Number(request.getResponseHeader("Upload-Offset")));
        else {
          let detail = `HTTP ${request.status}`;
          try { detail = JSON.parse(request.responseText).detail || detail; } catch { /* not JSON */ }
          reject(Object.assign(new Error(detail), { fatal: [400, 403, 404, 413, 415, 422].includes(request.status) }));
        }
      };
      request.onerror = () => reject(new Error("network error"));
      request.send(chunk);
    });
  }

  // --- start ----------------------------------------------------------------------------------------
  $("back-to-rooms").addEventListener("click", () => { document.body.classList.remove("room-open"); });
  window.addEventListener("popstate", () => {
    const match = location.pathname.match(/^\/chat\/(\d+)\/?$/);
    if (match) openRoom(match[1], false); else { closeSocket(); state.roomId = null; showEmptyPane(); renderRooms(); }
  });
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible" && state.roomId) markRead(); });
  setInterval(() => { loadRooms(); loadNotificationCount(); }, 30000);
  loadNotificationCount();

  loadRooms().then(() => {
    if (config.room_id) openRoom(config.room_id, false);
    else showEmptyPane();
  });
})();
