// Files through tus: resumable after a cut network or a reload (the upload's URL is remembered),
// with a progress bar; the message that carries the file is posted once it is complete.
import { api, csrf, detail } from "./api.js";
import { $, formatSize, newClientId, showError } from "./dom.js";
import { app, emit } from "./state.js";

const toBase64 = (text) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));

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
      if (request.status === 204) { resolve(Number(request.getResponseHeader("Upload-Offset"))); return; }
      let text = `HTTP ${request.status}`;
      try { text = JSON.parse(request.responseText).detail || text; } catch { /* not JSON */ }
      reject(Object.assign(new Error(text), { fatal: [400, 403, 404, 413, 415, 422].includes(request.status) }));
    };
    request.onerror = () => reject(new Error("network error"));
    request.send(chunk);
  });
}

async function tusUpload(roomId, file, onProgress, onStatus) {
  const key = `tus:${roomId}:${file.name}:${file.size}:${file.lastModified}`;
  let location = localStorage.getItem(key);
  if (!location) {
    const created = await api("POST", `/api/rooms/${roomId}/uploads/`, undefined, {
      "Tus-Resumable": "1.0.0",
      "Upload-Length": String(file.size),
      "Upload-Metadata": `filename ${toBase64(file.name)},filetype ${toBase64(file.type || "application/octet-stream")}`,
    });
    if (!created.ok) throw new Error(detail(created, `HTTP ${created.status}`));
    location = created.response.headers.get("Location");
    localStorage.setItem(key, location);
  }
  let failures = 0;
  let offset = await headOffset(location);
  while (offset < file.size) {
    try {
      const chunk = file.slice(offset, offset + app.config.upload_chunk);
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
  const finished = await api("GET", location);
  if (!finished.ok) throw new Error(detail(finished, "the upload did not complete"));
  return finished.data;
}

async function postWithRetry(roomId, payload) {
  for (let attempt = 0; attempt < 8; attempt += 1) {
    const posted = await api("POST", `/api/messages/${roomId}`, payload);
    if (posted.ok) return posted.data;
    if (posted.status && posted.status < 500) throw new Error(detail(posted, `HTTP ${posted.status}`));
    await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** attempt)); // same client_id: no double
  }
  throw new Error("the server stayed unreachable");
}

export function install() {
  $("file-input").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (!file || !app.roomId) return;
    const roomId = app.roomId;
    const progress = $("upload-progress");
    const bar = progress.querySelector("progress");
    const label = progress.querySelector("span");
    progress.hidden = false;
    showError($("composer-error"), "");
    try {
      const attachment = await tusUpload(roomId, file, (sent) => {
        bar.value = file.size ? Math.round((sent / file.size) * 100) : 100;
        label.textContent = `${file.name}: ${formatSize(sent)} of ${formatSize(file.size)}`;
      }, (text) => { label.textContent = text; });
      const input = $("message-input");
      const body = input.value;
      input.value = "";
      const posted = await postWithRetry(roomId, { body, attachments: [attachment.id], client_id: newClientId() });
      emit("message", posted);
    } catch (error) {
      showError($("composer-error"), `Upload failed: ${error.message}`);
    } finally {
      progress.hidden = true;
    }
  });
}
