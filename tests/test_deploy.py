"""The Docker deployment, checked without a Docker engine (none on these machines).

docker-compose.yml is read as `docker compose config` resolves it (the Compose CLI and hadolint come
from requirements-dev.txt), and the containers' commands run here as the containers run them: the
`web` service's scripts/run_server.sh with that service's environment, the `migrate` and `worker`
commands, and Caddy with deploy/Caddyfile. Only what a container cannot have here is changed: the
stores' host names (the test's PostgreSQL, Redis and SecantusDB instead), the image's venv path
(this checkout's), loopback addresses and free ports.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.conf import settings

from tests import live
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # this checkout's venv (.venv/bin)
IMAGE_VENV = "/opt/venv"  # the Dockerfile's VENV
CHAT_HOST = "chat.example.com"
# Every variable the stack requires; each value a dummy.
REQUIRED = {
    "SECRET_KEY": "deploy-test-secret-key-0123456789abcdef0123456789",
    "POSTGRES_PASSWORD": "pg-secret-1",
    "MONGO_ROOT_PASSWORD": "mongo-secret-2",
    "REDIS_PASSWORD": "redis-secret-3",
    "CHAT_HOST": CHAT_HOST,
}
STORES = ("postgres", "mongo", "redis")
TRUSTED_FORWARDED = "203.0.113.9"  # TEST-NET-3: addresses a client claims in X-Forwarded-For
OTHER_FORWARDED = "203.0.113.77"

# The servers started here use the test database (migrated by pytest-django for the session).
NEEDS_DATABASE = pytest.mark.django_db

pytestmark = pytest.mark.skipif(
    (ROOT / ".env").exists(), reason="a local .env changes what compose and scripts/run_server.sh read"
)


def compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The Compose CLI on docker-compose.yml with exactly `env` (no .env file, nothing inherited)."""
    return subprocess.run(
        [str(BIN / "docker-compose"), "--env-file", os.devnull, "-f", str(ROOT / "docker-compose.yml"), *args],
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    result = compose("config", "--format", "json", env=REQUIRED)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def service(config: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(config["services"][name])


# --- docker-compose.yml ----------------------------------------------------------------------------


def test_only_the_proxy_publishes_a_port(config: dict[str, Any]) -> None:
    published = {name: svc["ports"] for name, svc in config["services"].items() if svc.get("ports")}
    assert list(published) == ["proxy"], published
    assert {(port["target"], port["protocol"]) for port in published["proxy"]} == {
        (80, "tcp"),
        (443, "tcp"),
        (443, "udp"),  # HTTP/3
    }


@pytest.mark.parametrize("variable", sorted(REQUIRED))
def test_config_fails_without_each_required_variable(variable: str) -> None:
    result = compose("config", "-q", env={k: v for k, v in REQUIRED.items() if k != variable})
    assert result.returncode != 0
    assert f"required variable {variable} is missing a value" in result.stderr, result.stderr


def test_postgres_requires_a_password(config: dict[str, Any]) -> None:
    env = service(config, "postgres")["environment"]
    assert env["POSTGRES_PASSWORD"] == REQUIRED["POSTGRES_PASSWORD"]
    assert env.get("POSTGRES_HOST_AUTH_METHOD") == "scram-sha-256"
    assert "trust" not in json.dumps(service(config, "postgres"))
    url = urlsplit(service(config, "web")["environment"]["POSTGRESQL_URL"])
    assert (url.hostname, url.password) == ("postgres", REQUIRED["POSTGRES_PASSWORD"])


def test_redis_requires_a_password(config: dict[str, Any]) -> None:
    command = service(config, "redis")["command"]
    assert command[command.index("--requirepass") + 1] == REQUIRED["REDIS_PASSWORD"]
    url = urlsplit(service(config, "web")["environment"]["REDIS_URL"])
    assert (url.hostname, url.password) == ("redis", REQUIRED["REDIS_PASSWORD"])


def test_mongo_is_an_authenticated_replica_set(config: dict[str, Any]) -> None:
    mongo = service(config, "mongo")
    command = mongo["command"]
    assert command[command.index("--replSet") + 1] == "rs0"
    assert command[command.index("--keyFile") + 1].startswith("/etc/mongo-keyfile/")
    assert mongo["environment"]["MONGO_INITDB_ROOT_PASSWORD"] == REQUIRED["MONGO_ROOT_PASSWORD"]
    # The replica set is initiated by the healthcheck, which the app's services wait for.
    assert "/deploy/mongo-healthcheck.js" in mongo["healthcheck"]["test"]
    assert "rs.initiate(" in (ROOT / "deploy" / "mongo-healthcheck.js").read_text()
    url = urlsplit(service(config, "web")["environment"]["MONGODB_URL"])
    query = {key: values[0] for key, values in parse_qs(url.query).items()}
    assert (url.hostname, url.username, url.password) == ("mongo", "root", REQUIRED["MONGO_ROOT_PASSWORD"])
    assert query == {"replicaSet": "rs0", "w": "majority", "authSource": "admin"}


def test_hosts_are_named_not_wildcards(config: dict[str, Any]) -> None:
    for name in ("web", "worker", "migrate"):
        env = service(config, name)["environment"]
        hosts = env["ALLOWED_HOSTS"].split(",")
        assert "*" not in env["ALLOWED_HOSTS"] and CHAT_HOST in hosts, hosts
        assert env["CSRF_TRUSTED_ORIGINS"] == f"https://{CHAT_HOST}"
        assert "HTTPS" not in env and "SECURE_SSL_REDIRECT" not in env  # on: the app's default
    assert service(config, "proxy")["environment"]["CHAT_HOST"] == CHAT_HOST  # its certificate's name
    # Another public origin (another port in front of the proxy, say) is one variable away.
    result = compose("config", "--format", "json", env={**REQUIRED, "CHAT_ORIGIN": f"https://{CHAT_HOST}:8443"})
    web = json.loads(result.stdout)["services"]["web"]
    assert web["environment"]["CSRF_TRUSTED_ORIGINS"] == f"https://{CHAT_HOST}:8443"


def test_uvicorn_trusts_forwarded_headers_from_the_proxy_alone(config: dict[str, Any]) -> None:
    trusted = service(config, "web")["environment"]["FORWARDED_ALLOW_IPS"]
    assert trusted != "*"
    proxy_address = service(config, "proxy")["networks"]["default"]["ipv4_address"]
    assert trusted == proxy_address
    (network,) = config["networks"]["default"]["ipam"]["config"]
    # The fixed address lies in the subnet, outside the range other containers' addresses come from.
    assert ipaddress.ip_address(proxy_address) in ipaddress.ip_network(network["subnet"])
    assert ipaddress.ip_address(proxy_address) not in ipaddress.ip_network(network["ip_range"])


def test_app_services_start_after_healthy_stores_and_one_migration(config: dict[str, Any]) -> None:
    for store in STORES:
        assert "test" in service(config, store)["healthcheck"], store
    for name in ("web", "worker"):
        depends = service(config, name)["depends_on"]
        assert {store: depends[store]["condition"] for store in STORES} == dict.fromkeys(STORES, "service_healthy")
        assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert service(config, "web")["environment"]["RUN_MIGRATIONS"] == "false"
    assert "migrate --noinput" in " ".join(service(config, "migrate")["command"])
    assert service(config, "proxy")["depends_on"]["web"]["condition"] == "service_healthy"


def test_commands_use_paths_the_image_has(config: dict[str, Any]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"VENV={IMAGE_VENV}" in dockerfile and ".venv" not in dockerfile
    worker = service(config, "worker")["command"]
    assert worker[0] == f"{IMAGE_VENV}/bin/celery" and (BIN / "celery").exists()
    assert service(config, "web")["command"] == ["./scripts/run_server.sh"]
    assert os.access(ROOT / "scripts" / "run_server.sh", os.X_OK)


def test_every_compose_variable_is_in_env_example() -> None:
    used = set(re.findall(r"\$\{([A-Z_]+)", (ROOT / "docker-compose.yml").read_text()))
    documented = set(re.findall(r"^#? ?([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    assert used >= set(REQUIRED) and used <= documented, used - documented
    # The example's required values are empty: copied as it is, compose refuses to start.
    result = compose("--env-file", str(ROOT / ".env.example"), "config", "-q", env={})
    assert result.returncode != 0 and "required variable" in result.stderr


# --- Dockerfile, .dockerignore, Caddyfile ----------------------------------------------------------


def test_dockerfile_is_multi_stage_non_root_and_lint_clean() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    stages = [line for line in lines if line.startswith("FROM ")]
    assert stages == ["FROM python:3.11-slim AS builder", "FROM python:3.11-slim"]
    final = lines[lines.index(stages[-1]) :]
    assert f"COPY --from=builder {IMAGE_VENV} {IMAGE_VENV}" in final
    (user,) = [line.split()[1] for line in final if line.startswith("USER ")]
    assert user.split(":")[0] not in ("0", "root")
    assert any(line.startswith("HEALTHCHECK ") and "/health" in line for line in final)
    result = subprocess.run([str(BIN / "hadolint"), str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".data", ".env", "test-artifacts", "bench/results", "node_modules", "*.log"} <= ignored


def caddy() -> str:
    found = shutil.which("caddy")
    if not found:
        pytest.skip("no caddy on this machine (.ci/run installs Debian's)")
    return found


def test_caddyfile_serves_chat_host_over_https() -> None:
    """deploy/Caddyfile as the proxy container adapts it (its environment from compose)."""
    result = subprocess.run(
        [caddy(), "adapt", "--config", str(ROOT / "deploy" / "Caddyfile"), "--adapter", "caddyfile"],
        env={"PATH": os.environ["PATH"], "CHAT_HOST": CHAT_HOST, "CADDY_GLOBAL_OPTIONS": ""},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    http = json.loads(result.stdout)["apps"]["http"]
    assert (http["http_port"], http["https_port"]) == (80, 443)
    server = http["servers"]["srv0"]
    assert server["listen"] == ["0.0.0.0:443"]
    assert server["routes"][0]["match"] == [{"host": [CHAT_HOST]}]
    assert "automatic_https" not in server  # certificates and the port-80 redirect: Caddy's defaults
    assert "trusted_proxies" not in result.stdout  # so Caddy replaces a client's X-Forwarded-For


# --- The containers' commands, run here --------------------------------------------------------------


def container_env(config: dict[str, Any], name: str, tmp: Path, **overrides: str) -> dict[str, str]:
    """Service `name`'s environment as its container has it, pointed at this machine's stores."""
    env: dict[str, str] = dict(service(config, name)["environment"])
    assert env["MONGODB_URL"].startswith("mongodb://") and env["REDIS_URL"].startswith("redis://")
    (tmp / "files").mkdir(exist_ok=True)
    env.update(
        POSTGRESQL_URL=live.test_database_url(),
        MONGODB_URL=settings.MONGODB_URL,  # SecantusDB (tests/conftest.py): no replica set or users
        MONGODB_NAME=settings.MONGODB_NAME,
        REDIS_URL=settings.REDIS_URL,
        UPLOAD_TEMP_DIR=str(tmp / "files" / "partial"),
        MEDIA_ROOT=str(tmp / "files" / "media"),
        # The image's environment (Dockerfile ENV), with this checkout's venv for /opt/venv.
        PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
        VENV=str(BIN.parent),
        PYTHONUNBUFFERED="1",
        HOME=str(tmp),
    )
    env.update(overrides)
    return env


def in_this_checkout(command: list[str]) -> list[str]:
    return [part.replace(IMAGE_VENV, str(BIN.parent)) for part in command]


def healthcheck_command() -> list[str]:
    """The Dockerfile's HEALTHCHECK, exec form."""
    (line,) = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("HEALTHCHECK ")]
    return list(json.loads(line.split(" CMD ", 1)[1]))


def wait_healthy(server: live.ServerProcess, env: dict[str, str]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited: {server.log.read_text()[-3000:]}")
        check = subprocess.run(healthcheck_command(), env=env, capture_output=True, timeout=10)
        if check.returncode == 0:
            return
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"the image's HEALTHCHECK never passed: {server.log.read_text()[-3000:]}")


def start_web(config: dict[str, Any], tmp: Path, forwarded_allow_ips: str, **extra: str) -> live.ServerProcess:
    """The `web` container's command with its environment, on 127.0.0.1 (0.0.0.0 in the container)."""
    port = free_port()
    env = container_env(
        config,
        "web",
        tmp,
        HOST="127.0.0.1",
        PORT=str(port),
        FORWARDED_ALLOW_IPS=forwarded_allow_ips,
        LOGIN_RATE_LIMIT="2/h",  # per client address; an hour, so no window ends mid-test
        **extra,
    )
    log = tmp / f"web-{port}.log"
    command = in_this_checkout(service(config, "web")["command"])
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    server = live.ServerProcess(port, proc, log)
    wait_healthy(server, env)
    return server


def stop(server: live.ServerProcess) -> None:
    """SIGTERM to the script and the server it started (one process group), SIGKILL after 15 s."""
    group = server.proc.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        server.proc.poll()
        try:
            os.killpg(group, 0)  # anyone left?
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    server.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def trusting_web(
    config: dict[str, Any], tmp_path_factory: pytest.TempPathFactory, mongo_url: str
) -> Iterator[live.ServerProcess]:
    server = start_web(config, tmp_path_factory.mktemp("web-trusting"), forwarded_allow_ips="127.0.0.1")
    yield server
    stop(server)


def failed_login(
    base_url: str, forwarded_for: str, *, client: httpx.Client | None = None, proto: str = "https"
) -> tuple[int, str]:
    """One wrong password for an account nobody has, claiming `forwarded_for` as the client.

    Straight to the server (no `client`) the request also says what Caddy would: X-Forwarded-Proto."""
    headers = {"Host": CHAT_HOST, "X-Forwarded-For": forwarded_for}
    if client is None:
        headers["X-Forwarded-Proto"] = proto
    response = (client or httpx.Client()).post(
        f"{base_url}/api/auth/login",
        json={"username": f"nobody{uuid.uuid4().hex[:10]}", "password": "wrong password"},
        headers=headers,
        timeout=10,
    )
    if response.status_code in (301, 302, 307, 308):
        return response.status_code, response.headers["location"]
    return response.status_code, str(response.json().get("code", ""))


REFUSED = (401, "invalid_credentials")
LIMITED = (429, "rate_limited")


@NEEDS_DATABASE
def test_web_serves_only_its_host_names(trusting_web: live.ServerProcess) -> None:
    assert httpx.get(f"{trusting_web.http}/health", headers={"Host": CHAT_HOST}).status_code == 200
    assert httpx.get(f"{trusting_web.http}/health", headers={"Host": "attacker.example"}).status_code == 400


@NEEDS_DATABASE
def test_web_redirects_unless_the_trusted_proxy_says_https(trusting_web: live.ServerProcess) -> None:
    # HTTPS is on in the container: a request the proxy did not mark as https goes to https.
    assert failed_login(trusting_web.http, TRUSTED_FORWARDED, proto="http") == (
        301,
        f"https://{CHAT_HOST}/api/auth/login",
    )
    assert failed_login(trusting_web.http, TRUSTED_FORWARDED) == REFUSED


@NEEDS_DATABASE
def test_web_takes_the_client_address_from_a_trusted_proxy(trusting_web: live.ServerProcess) -> None:
    # Two failed logins from one client lock that client out (LOGIN_RATE_LIMIT=2/h), not another.
    assert failed_login(trusting_web.http, TRUSTED_FORWARDED) == REFUSED
    assert failed_login(trusting_web.http, TRUSTED_FORWARDED) == REFUSED
    assert failed_login(trusting_web.http, TRUSTED_FORWARDED) == LIMITED
    assert failed_login(trusting_web.http, OTHER_FORWARDED) == REFUSED


@NEEDS_DATABASE
def test_web_ignores_forwarded_headers_from_other_peers(config: dict[str, Any], tmp_path: Path, mongo_url: str) -> None:
    # A proxy that is not 127.0.0.1. Its X-Forwarded-Proto is not believed either, so every request
    # would be redirected to https before it reached the login: that redirect is turned off here.
    server = start_web(config, tmp_path, forwarded_allow_ips="192.0.2.10", SECURE_SSL_REDIRECT="false")
    try:
        # Every request is the peer 127.0.0.1, whatever it claims: one client's failures limit both.
        assert failed_login(server.http, TRUSTED_FORWARDED) == REFUSED
        assert failed_login(server.http, TRUSTED_FORWARDED) == REFUSED
        assert failed_login(server.http, OTHER_FORWARDED) == LIMITED
    finally:
        stop(server)


@NEEDS_DATABASE
def test_caddy_terminates_tls_and_replaces_a_client_supplied_forwarded_for(
    trusting_web: live.ServerProcess, tmp_path: Path
) -> None:
    """deploy/Caddyfile in front of the trusting server, its certificate from Caddy's local CA (the
    public one needs a public name): the app sees https, and a client cannot claim another address."""
    http_port, https_port = free_port(), free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "CHAT_HOST": CHAT_HOST,
        "CADDY_GLOBAL_OPTIONS": "local_certs\nskip_install_trust",
        "CADDY_HTTP_PORT": str(http_port),
        "CADDY_HTTPS_PORT": str(https_port),
        "CADDY_BIND": "127.0.0.1",
        "CADDY_ADMIN": "off",
        "WEB_HOST": "127.0.0.1",
        "WEB_PORT": str(trusting_web.port),
    }
    log = tmp_path / "caddy.log"
    proc = subprocess.Popen(
        [caddy(), "run", "--config", str(ROOT / "deploy" / "Caddyfile"), "--adapter", "caddyfile"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    base = f"https://127.0.0.1:{https_port}"
    root_ca = tmp_path / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
    try:
        deadline = time.monotonic() + 30
        while not root_ca.exists():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        # Verified against Caddy's root, for the name the client asks for (SNI).
        client = httpx.Client(verify=ssl.create_default_context(cafile=str(root_ca)))
        client.event_hooks["request"] = [lambda request: request.extensions.update(sni_hostname=CHAT_HOST)]
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                response = client.get(f"{base}/health", headers={"Host": CHAT_HOST}, timeout=2)
                if response.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        redirect = httpx.get(f"http://127.0.0.1:{http_port}/api/auth/login", headers={"Host": CHAT_HOST})
        assert redirect.status_code == 308
        location = urlsplit(redirect.headers["location"])  # (the port: 443 in the container)
        assert (location.scheme, location.hostname, location.path) == ("https", CHAT_HOST, "/api/auth/login")
        # No redirect from the app: it took https from the proxy's X-Forwarded-Proto. Each request
        # claims another client; Caddy sends the real one (127.0.0.1), so both count as one.
        assert failed_login(base, TRUSTED_FORWARDED, client=client) == REFUSED
        assert failed_login(base, TRUSTED_FORWARDED, client=client) == REFUSED
        assert failed_login(base, OTHER_FORWARDED, client=client) == LIMITED
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@NEEDS_DATABASE
def test_migrate_command_runs(config: dict[str, Any], tmp_path: Path, mongo_url: str) -> None:
    """The one-shot `migrate` service (the test database is migrated already: nothing to apply)."""
    result = subprocess.run(
        in_this_checkout(service(config, "migrate")["command"]),
        cwd=ROOT,
        env=container_env(config, "migrate", tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No migrations to apply" in result.stdout


@NEEDS_DATABASE
def test_worker_command_starts(config: dict[str, Any], tmp_path: Path, mongo_url: str) -> None:
    """The `worker` service's command connects to the broker and reports ready (then stops on SIGTERM)."""
    workdir = tmp_path / "app"  # the image's /app: the code importable, .data writable
    (workdir / ".data").mkdir(parents=True)
    env = container_env(config, "worker", tmp_path, PYTHONPATH=str(ROOT), CELERY_QUEUE=f"deploy-{uuid.uuid4().hex}")
    log = tmp_path / "worker.log"
    proc = subprocess.Popen(
        in_this_checkout(service(config, "worker")["command"]),
        cwd=workdir,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not re.search(r"celery@\S+ ready\.", log.read_text()):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        assert "beat: Starting..." in log.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert (workdir / ".data" / "celerybeat-schedule").exists() or any((workdir / ".data").iterdir())
