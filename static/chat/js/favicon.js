// The tab's icon with the count of unread notifications drawn on it (a canvas made a PNG data URL
// on <link rel="icon">); the plain icon again at 0.
const link = document.querySelector('link[rel~="icon"]');
const plain = link?.getAttribute("href") || "";
let shown = 0;

function drawn(count) {
  const size = 64;
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = size;
  const ctx = canvas.getContext("2d");
  if (!ctx) return plain;
  // A speech bubble (no emoji font needed), then a red disc with the count over its corner.
  ctx.fillStyle = "#2458c6";
  ctx.beginPath();
  ctx.roundRect(2, 10, 50, 38, 10);
  ctx.moveTo(12, 46); ctx.lineTo(10, 60); ctx.lineTo(26, 46);
  ctx.fill();
  const text = count > 99 ? "99+" : String(count);
  const radius = 18;
  const width = text.length > 1 ? Math.max(2 * radius, 12 + text.length * 14) : 2 * radius;
  const right = size - 1;
  ctx.fillStyle = "#d93025";
  ctx.beginPath();
  ctx.roundRect(right - width, 1, width, 2 * radius, radius);
  ctx.fill();
  ctx.fillStyle = "#ffffff";
  ctx.font = `bold ${text.length > 2 ? 20 : 26}px system-ui, sans-serif`;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.fillText(text, right - width / 2, 1 + radius + 1);
  return canvas.toDataURL("image/png");
}

export function showCount(count) {
  if (!link || count === shown) return;
  shown = count;
  link.setAttribute("href", count > 0 ? drawn(count) : plain);
}
