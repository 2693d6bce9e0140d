"""Production settings: `check --deploy` is clean, TLS is on unless in development mode (with /health
left to plain http probes and a trusted proxy header), and API errors are JSON whatever Accept says.

The settings are read in processes of their own (the suite itself runs with HTTPS=false).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from accounts.models import User
from files import services
from rooms.models import Room
from tests.conftest import client_for
from tests.test_websocket import make_room

ROOT = Path(__file__).resolve().parent.parent
HOST = "chat.example.com"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
ONE_YEAR = 365 * 24 * 3600
TLS_SETTINGS = [
    "HTTPS",
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_PROXY_SSL_HEADER",
]

# Run in a fresh process: the settings it got, and what the test client gets over plain http.
PROBE = """
import json
import django
django.setup()
from django.conf import settings
from django.test import Client, RequestFactory

client = Client(HTTP_HOST=%(host)r)
answers = {}
for label, method, path, headers in [
    ("api", "get", "/api/rooms/", {}),
    ("health", "get", "/health", {}),
    # A POST: the view refuses it (405) at once, where a GET would wait on every backing service.
    ("ready", "post", "/health/ready", {}),
    ("metrics", "get", "/metrics", {}),
    ("api_via_tls_proxy", "get", "/api/rooms/", {"HTTP_X_FORWARDED_PROTO": "https"}),
    ("health_via_tls_proxy", "get", "/health", {"HTTP_X_FORWARDED_PROTO": "https"}),
]:
    response = getattr(client, method)(path, **headers)
    answers[label] = {
        "status": response.status_code,
        "location": response.get("Location"),
        "hsts": response.get("Strict-Transport-Security"),
    }
forwarded = RequestFactory(HTTP_HOST=%(host)r).get("/", HTTP_X_FORWARDED_PROTO="https")
print(json.dumps({
    "settings": {name: getattr(settings, name, None) for name in %(names)r},
    "answers": answers,
    "forwarded_is_secure": forwarded.is_secure(),
}))
"""


@pytest.fixture(autouse=True)
def _no_dotenv() -> None:
    if (ROOT / ".env").exists():
        pytest.skip("a local .env may set these variables: this checks the defaults a deployment gets")


def production_env(**extra: str) -> dict[str, str]:
    """A deployment's environment: a long random secret, DEBUG off, its host, the services; no
    development mode and none of the TLS variables (so their defaults are what is checked)."""
    kept = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT")}
    return {
        **kept,
        "SECRET_KEY": secrets.token_urlsafe(60),
        "DEBUG": "false",
        "ALLOWED_HOSTS": HOST,
        "POSTGRESQL_URL": os.environ["POSTGRESQL_URL"],
        "REDIS_URL": os.environ["REDIS_URL"],
        "DJANGO_SETTINGS_MODULE": "chatproject.settings",
        "PYTHONPATH": str(ROOT),
        **extra,
    }


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def probe(env: dict[str, str]) -> dict[str, Any]:
    done = run(["-c", PROBE % {"host": HOST, "names": TLS_SETTINGS}], env)
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_deploy_check_passes_without_a_warning() -> None:
    done = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env())
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "System check identified no issues" in output, output
    assert "WARNING" not in output and "security.W" not in output, output


def test_tls_is_on_by_default_and_relaxed_in_development_mode() -> None:
    production = probe(production_env())["settings"]
    assert production == {
        "HTTPS": True,
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": ONE_YEAR,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": False,  # opt-in
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "SECURE_PROXY_SSL_HEADER": None,  # no header believed unless configured
    }
    development = probe(production_env(CHAT_DEV_MODE="true"))["settings"]
    assert development["HTTPS"] is False
    assert development["SECURE_SSL_REDIRECT"] is False
    assert development["SESSION_COOKIE_SECURE"] is False and development["CSRF_COOKIE_SECURE"] is False
    assert development["SECURE_HSTS_SECONDS"] == 0
    assert development["SECURE_CONTENT_TYPE_NOSNIFF"] is True  # not a TLS matter: kept
    # The deploy check then names exactly what development mode relaxed.
    done = run(["manage.py", "check", "--deploy"], production_env(CHAT_DEV_MODE="true"))
    warned = {code for code in ("W004", "W008", "W012", "W016") if f"security.{code}" in done.stderr + done.stdout}
    assert warned == {"W004", "W008", "W012", "W016"}, done.stdout + done.stderr
    # Each flag is also a variable of its own; HTTPS=false is what the tests and benchmarks set.
    mixed = probe(production_env(HTTPS="false", SESSION_COOKIE_SECURE="true"))["settings"]
    assert mixed["SECURE_SSL_REDIRECT"] is False and mixed["SESSION_COOKIE_SECURE"] is True
    assert mixed["SECURE_HSTS_SECONDS"] == 0


def test_plain_http_is_redirected_to_https_but_health_probes() -> None:
    answers = probe(production_env())["answers"]
    assert answers["api"]["status"] == 301
    assert answers["api"]["location"] == f"https://{HOST}/api/rooms/"
    assert answers["health"] == {"status": 200, "location": None, "hsts": None}  # no HSTS over http
    assert answers["ready"]["status"] == 405 and answers["ready"]["location"] is None  # reached the view
    assert answers["metrics"]["status"] == 200 and answers["metrics"]["location"] is None  # a scraper's http
    # Without a configured proxy header, a client's own X-Forwarded-Proto is not believed.
    assert answers["api_via_tls_proxy"]["status"] == 301


def test_a_configured_proxy_header_marks_requests_secure() -> None:
    result = probe(production_env(SECURE_PROXY_SSL_HEADER_NAME="X-Forwarded-Proto"))
    assert result["settings"]["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert result["forwarded_is_secure"] is True
    answers = result["answers"]
    # Not redirected: the API answers (401, nobody signed in), and HSTS goes out, as on https only.
    assert answers["api_via_tls_proxy"]["status"] == 401 and answers["api_via_tls_proxy"]["location"] is None
    assert answers["health_via_tls_proxy"]["status"] == 200
    assert answers["health_via_tls_proxy"]["hsts"] == f"max-age={ONE_YEAR}; includeSubDomains"
    assert answers["api"]["status"] == 301  # a request the proxy says came over http still is redirected


# --- errors are JSON, whatever a browser's Accept asks for ----------------------------------------


def assert_json_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body: dict[str, Any] = json.loads(response.content)
    assert body["code"] == code and isinstance(body["detail"], str) and body["detail"], body
    assert set(body) <= {"code", "detail", "fields"}, body
    return body


@pytest.mark.django_db
def test_api_errors_are_json_for_a_browser(alice: User) -> None:
    anonymous = client_for(None)
    assert_json_error(anonymous.get("/api/auth/me", HTTP_ACCEPT=BROWSER_ACCEPT), 401, "not_authenticated")
    assert_json_error(anonymous.get("/api/auth/me", HTTP_ACCEPT="text/html"), 401, "not_authenticated")
    client = client_for(alice)
    assert_json_error(client.get("/api/rooms/999999", HTTP_ACCEPT=BROWSER_ACCEPT), 404, "room_not_found")
    invalid = client.post("/api/rooms/", {"name": ""}, format="json", HTTP_ACCEPT=BROWSER_ACCEPT)
    assert "name" in assert_json_error(invalid, 400, "invalid")["fields"]
    assert_json_error(client.put("/api/rooms/", {}, format="json", HTTP_ACCEPT="text/html"), 405, "method_not_allowed")
    # Successes may still be the browsable page.
    page = client.get("/api/auth/me", HTTP_ACCEPT=BROWSER_ACCEPT)
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_an_unfinished_upload_is_a_json_conflict_for_a_browser(
    settings: Any, tmp_path: Path, alice: User, bob: User
) -> None:
    settings.UPLOAD_TEMP_DIR, settings.MEDIA_ROOT = str(tmp_path / "partial"), str(tmp_path / "media")
    room: Room = make_room(alice, bob)
    upload = services.upload_create(user=alice, room_id=room.pk, length=10, name="late.bin")
    answer = client_for(alice).get(f"/api/uploads/{upload.pk}", HTTP_ACCEPT=BROWSER_ACCEPT)
    assert_json_error(answer, 409, "upload_incomplete")
    assert answer["Upload-Offset"] == "0"
