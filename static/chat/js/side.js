// The side panel (thread, members, search, notifications, edit history): beside the list on a
// desktop, a full screen with a back button on a phone. Esc closes it.
import { $ } from "./dom.js";
import { emit } from "./state.js";

let current = null;

export function openSide(kind, title) {
  current = kind;
  $("side-title").textContent = title;
  $("side").hidden = false;
  $("thread-composer").hidden = kind !== "thread";
  document.body.classList.add("side-open");
}

export function closeSide() {
  if (current === null) return;
  const was = current;
  current = null;
  $("side").hidden = true;
  $("thread-composer").hidden = true;
  document.body.classList.remove("side-open");
  emit("side-closed", was);
}

export const sideIs = (kind) => current === kind;
export const body = () => $("side-body");

export function install() {
  $("side-close").addEventListener("click", closeSide);
  $("side-back").addEventListener("click", closeSide);
}
