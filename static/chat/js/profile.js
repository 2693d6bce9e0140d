// The profile dialog: one's name shown to others, picture (upload or remove) and e-mail notices,
// through PATCH /api/auth/me and PUT/DELETE /api/auth/me/avatar. Saved values update the page at
// once; others see them on their next render (authors are cached for a second on the server).
import { api, csrf, detail } from "./api.js";
import { $, avatar, displayName, showError } from "./dom.js";
import { app, emit } from "./state.js";
import { updateAuthor } from "./timeline.js";

function showMe() {
  $("me-face").replaceChildren(avatar(app.me, { size: "small" }));
  $("me-name").textContent = displayName(app.me);
  $("profile-face").replaceChildren(avatar(app.me, { size: "large" }));
  $("profile-remove").hidden = !app.me.avatar_url;
}

function updated(me) {
  app.me = { ...app.me, ...me };
  showMe();
  updateAuthor(app.me);
  emit("redraw"); // my own messages show the new name and face
}

async function sendPicture(file) {
  const error = $("profile-error");
  showError(error, "");
  const form = new FormData();
  form.append("file", file);
  $("profile-picture-status").textContent = "Uploading…";
  let response;
  try {
    response = await fetch("/api/auth/me/avatar", { method: "PUT", body: form, credentials: "same-origin", headers: { "X-CSRFToken": csrf() } });
  } catch {
    response = null;
  }
  $("profile-picture-status").textContent = "";
  const data = response ? await response.json().catch(() => null) : null;
  if (!response?.ok) { showError(error, data?.detail || "The server cannot be reached."); return; }
  updated(data);
}

function open() {
  $("profile-display-name").value = app.me.display_name || "";
  $("profile-display-name").placeholder = app.me.username;
  $("profile-email-notifications").checked = app.me.email_notifications !== false;
  showError($("profile-error"), "");
  showMe();
  $("profile-dialog").showModal();
  $("profile-display-name").focus();
}

async function load() {
  // The page's config holds the public shape; the preferences come with GET /api/auth/me.
  const result = await api("GET", "/api/auth/me");
  if (result.ok) { app.me = { ...app.me, ...result.data }; showMe(); emit("me-loaded", app.me); }
}

export function install() {
  showMe();
  load();
  $("profile-button").addEventListener("click", open);
  $("profile-picture").addEventListener("change", (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (file) sendPicture(file);
  });
  $("profile-remove").addEventListener("click", async () => {
    const result = await api("DELETE", "/api/auth/me/avatar");
    if (!result.ok) { showError($("profile-error"), detail(result, "Could not remove the picture.")); return; }
    updated({ avatar_url: null });
  });
  $("profile-form").addEventListener("submit", async (event) => {
    if (event.submitter?.value === "cancel") return; // the dialog closes itself
    event.preventDefault();
    const result = await api("PATCH", "/api/auth/me", {
      display_name: $("profile-display-name").value.trim(),
      email_notifications: $("profile-email-notifications").checked,
    });
    if (!result.ok) {
      const fields = result.data?.fields || {};
      showError($("profile-error"), fields.display_name?.[0] || detail(result, "Could not save."));
      return;
    }
    updated(result.data);
    $("profile-dialog").close();
  });
}
