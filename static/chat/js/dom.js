// Small DOM helpers shared by every module.
export const $ = (id) => document.getElementById(id);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined && child !== false) node.append(child);
  return node;
}

export const displayName = (user) => user.display_name || user.username;

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long", year: "numeric" });
export const shortTime = (iso) => timeFormat.format(new Date(iso));
export const fullTime = (iso) => fullFormat.format(new Date(iso));
export const dayLabel = (iso) => dayFormat.format(new Date(iso));
export const sameDay = (a, b) => new Date(a).toDateString() === new Date(b).toDateString();

export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GB`;
}

export const newClientId = () => (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`);

// An inline error under a form or the composer (role="alert"); empty text hides it.
export function showError(node, text) {
  if (!node) return;
  node.textContent = text || "";
  node.hidden = !text;
}

// A face: the uploaded picture, or initials on a colour (files/avatars.py draws the same ones).
const HUES = 9;
export function initials(user) {
  const words = displayName(user).split(/\s+/).filter(Boolean);
  if (!words.length) return "?";
  const first = (word) => [...word][0];
  return (first(words[0]) + (words.length > 1 ? first(words[words.length - 1]) : "")).toUpperCase();
}

export function avatar(user, { size = "" } = {}) {
  const classes = size ? `avatar ${size}` : "avatar";
  if (user.avatar_url) return el("img", { class: classes, src: user.avatar_url, alt: "", loading: "lazy" });
  return el("span", { class: `${classes} initials hue-${Number(user.id) % HUES}`, "aria-hidden": "true" }, initials(user));
}
