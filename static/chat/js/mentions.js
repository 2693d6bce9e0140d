// @-mention autocomplete from the open room's members: type "@" and a few letters, pick with the
// arrow keys and Enter or Tab (or a click); Esc closes the list.
import { api } from "./api.js";
import { closePopover, openPopover, popoverOpen } from "./dialogs.js";
import { displayName, el } from "./dom.js";
import { app } from "./state.js";

let loadedFor = null;

async function members() {
  if (loadedFor === app.roomId && app.members) return app.members;
  const roomId = app.roomId;
  const result = await api("GET", `/api/rooms/${roomId}/members?limit=200`);
  if (!result.ok || roomId !== app.roomId) return [];
  loadedFor = roomId;
  app.members = result.data.results.map((member) => member.user);
  return app.members;
}

export function forgetMembers() { loadedFor = null; app.members = null; }

function wordBeforeCaret(input) {
  const upto = input.value.slice(0, input.selectionStart);
  const match = upto.match(/(^|\s)@([\w.-]*)$/);
  return match ? { start: upto.length - match[2].length - 1, prefix: match[2].toLowerCase() } : null;
}

export function attach(input) {
  let choices = [];
  let active = 0;
  let word = null;
  let typed = 0; // input events so far: a members fetch that an insert or later typing overtook is dropped

  const insert = (user) => {
    const before = input.value.slice(0, word.start);
    const after = input.value.slice(input.selectionStart);
    input.value = `${before}@${user.username} ${after}`;
    const caret = before.length + user.username.length + 2;
    input.setSelectionRange(caret, caret);
    typed += 1;
    closePopover();
    input.focus();
  };

  const draw = () => {
    const list = el("ul", { class: "mention-list", role: "listbox", "aria-label": "Mention someone" },
      ...choices.map((user, index) => el("li", {
        role: "option", "aria-selected": String(index === active), class: index === active ? "active" : "",
        onpointerdown: (event) => { event.preventDefault(); insert(user); },
      }, el("strong", {}, `@${user.username}`), user.display_name ? ` ${user.display_name}` : "")));
    openPopover(input, list, { above: true });
  };

  input.addEventListener("input", async () => {
    const asked = ++typed;
    if (!wordBeforeCaret(input)) { word = null; if (popoverOpen()) closePopover(); return; }
    const people = await members();
    // The first keystrokes wait for the members; a late answer must not reopen the list after a
    // pick (the next Enter would pick again instead of sending).
    if (asked !== typed) return;
    word = wordBeforeCaret(input);
    if (!word) return;
    const room = [{ username: "room", display_name: "everyone in this room" }];
    choices = [...people, ...room].filter((user) => user.id !== app.me.id
      && (user.username.toLowerCase().startsWith(word.prefix) || displayName(user).toLowerCase().startsWith(word.prefix))).slice(0, 8);
    active = 0;
    // A name typed out in full needs no list: Enter then sends, as it would without one.
    const complete = choices.length === 1 && choices[0].username.toLowerCase() === word.prefix;
    if (choices.length && !complete) draw(); else closePopover();
  });

  input.addEventListener("keydown", (event) => {
    if (!popoverOpen() || !choices.length || !word) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      active = (active + (event.key === "ArrowDown" ? 1 : choices.length - 1)) % choices.length;
      draw();
    } else if (event.key === "Enter" || event.key === "Tab") {
      event.preventDefault();
      event.stopImmediatePropagation();
      insert(choices[active]);
    } else if (event.key === "Escape") {
      event.stopImmediatePropagation();
      closePopover();
    }
  });
}
