// REST with the session cookie and the CSRF header, as the browsable API and the admin use it.
export const csrf = () => (document.cookie.match(/(?:^|; )csrftoken=([^;]+)/) || [])[1] || "";

export async function api(method, path, body, headers = {}) {
  const options = { method, credentials: "same-origin", headers: { "X-CSRFToken": csrf(), ...headers } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch {
    return { ok: false, status: 0, data: { detail: "The server cannot be reached." }, response: null };
  }
  if (response.status === 401) window.location = `/login/?next=${encodeURIComponent(location.pathname)}`;
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  return { ok: response.ok, status: response.status, data, response };
}

export const detail = (result, fallback) => result.data?.detail || fallback;
