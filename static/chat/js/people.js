// The sidebar's person picker: type a name, pick someone, and the direct room with them opens
// (POST /api/dms gives the same room to the same people, whoever asks).
import { api, detail } from "./api.js";
import { $, displayName, el, showError } from "./dom.js";
import { app, emit } from "./state.js";

let asked = 0;
let timer = null;

function close() {
  $("dm-results").hidden = true;
  $("dm-person").setAttribute("aria-expanded", "false");
}

async function openWith(user) {
  const made = await api("POST", "/api/dms", { user_ids: [user.id] });
  const error = $("dm-form").querySelector(".form-error");
  if (!made.ok) { showError(error, detail(made, "Could not open a conversation.")); return; }
  showError(error, "");
  $("dm-person").value = "";
  close();
  app.rooms.set(made.data.id, made.data);
  emit("open-room", { roomId: made.data.id });
}

async function search(text) {
  const mine = ++asked;
  const found = await api("GET", `/api/users?q=${encodeURIComponent(text)}`);
  if (mine !== asked) return; // a later keystroke asked again
  const list = $("dm-results");
  const people = found.ok ? found.data.results.filter((user) => user.id !== app.me.id) : [];
  list.replaceChildren(...(people.length
    ? people.map((user) => el("li", { role: "option" },
      el("button", { type: "button", onclick: () => openWith(user) },
        displayName(user), user.display_name ? el("span", { class: "hint" }, ` @${user.username}`) : null)))
    : [el("li", { class: "hint" }, found.ok ? "Nobody by that name." : detail(found, "Search failed."))]));
  list.hidden = false;
  $("dm-person").setAttribute("aria-expanded", "true");
}

export function install() {
  const input = $("dm-person");
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const text = input.value.trim();
    if (!text) { close(); return; }
    timer = setTimeout(() => search(text), 150);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { close(); return; }
    if (event.key === "Enter") { event.preventDefault(); $("dm-results").querySelector("button")?.click(); }
    if (event.key === "ArrowDown") { event.preventDefault(); $("dm-results").querySelector("button")?.focus(); }
  });
}
