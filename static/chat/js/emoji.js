// The emoji picker: a searchable grid in the page's popover, keyboard-usable.
import { closePopover, openPopover } from "./dialogs.js";
import { el } from "./dom.js";
import { EMOJI } from "./emoji_data.js";

export function pickEmoji(anchor, onPick) {
  const search = el("input", { type: "search", placeholder: "Search emoji", "aria-label": "Search emoji", class: "emoji-search" });
  const grid = el("div", { class: "emoji-grid", role: "listbox", "aria-label": "Emoji" });
  const draw = () => {
    const words = search.value.trim().toLowerCase();
    grid.replaceChildren();
    for (const [group, entries] of EMOJI) {
      const shown = entries.filter(([, name]) => !words || name.includes(words));
      if (!shown.length) continue;
      grid.append(el("p", { class: "emoji-group" }, group));
      for (const [emoji, name] of shown) {
        grid.append(el("button", { type: "button", class: "emoji", title: name, "aria-label": name, role: "option",
          onclick: () => { closePopover(); onPick(emoji); } }, emoji));
      }
    }
    if (!grid.children.length) grid.append(el("p", { class: "hint" }, "No emoji by that name."));
  };
  search.addEventListener("input", draw);
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      grid.querySelector("button.emoji")?.click();
    }
  });
  draw();
  openPopover(anchor, el("div", { class: "emoji-picker", role: "dialog", "aria-label": "Pick an emoji" }, search, grid));
  search.focus();
}
