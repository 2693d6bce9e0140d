// In-page dialogs instead of the browser's alert/confirm/prompt: a confirmation dialog and one
// popover (emoji picker, mention list) anchored to the control that opened it.
import { $ } from "./dom.js";

export function confirmAction(text, okLabel = "Delete") {
  const dialog = $("confirm-dialog");
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = okLabel;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    dialog.querySelector("button[value=cancel]").focus(); // the safe choice under Enter
  });
}

let closeCurrent = null;

// Show `content` next to `anchor`; `onClose` runs when it goes (Esc, a click elsewhere, closePopover()).
export function openPopover(anchor, content, { onClose, above = false } = {}) {
  closePopover();
  const popover = $("popover");
  popover.replaceChildren(content);
  popover.hidden = false;
  const box = anchor.getBoundingClientRect();
  const width = Math.min(popover.offsetWidth || 320, window.innerWidth - 16);
  popover.style.left = `${Math.max(8, Math.min(box.left, window.innerWidth - width - 8))}px`;
  if (above) {
    popover.style.top = "";
    popover.style.bottom = `${window.innerHeight - box.top + 6}px`;
  } else {
    popover.style.bottom = "";
    popover.style.top = `${Math.min(box.bottom + 6, window.innerHeight - popover.offsetHeight - 8)}px`;
  }
  const outside = (event) => { if (!popover.contains(event.target) && event.target !== anchor) closePopover(); };
  setTimeout(() => document.addEventListener("pointerdown", outside), 0);
  closeCurrent = () => {
    document.removeEventListener("pointerdown", outside);
    popover.hidden = true;
    popover.replaceChildren();
    closeCurrent = null;
    if (onClose) onClose();
  };
}

export function closePopover() {
  if (closeCurrent) closeCurrent();
}

export const popoverOpen = () => closeCurrent !== null;
