#!/usr/bin/env bash
# `make deploy-check`: the Docker deployment checked without a Docker engine (CI machines have none).
# docker-compose.yml must resolve with the required variables set, and fail without each of them;
# the Dockerfile must pass hadolint; deploy/Caddyfile must adapt. The Compose CLI and hadolint are
# pinned in requirements-dev.txt (binaries in wheels); Caddy is Debian's package, checked when present.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${VENV:-.venv}/bin"

# Dummy values: what the check needs is that each one is set.
REQUIRED=(
  SECRET_KEY=deploy-check-secret-key-0123456789abcdef0123456789
  POSTGRES_PASSWORD=deploy-check-postgres
  MONGO_ROOT_PASSWORD=deploy-check-mongo
  REDIS_PASSWORD=deploy-check-redis
  CHAT_HOST=chat.example.com
)
# Nothing from this shell or a local .env: only the variables given.
compose() { env -i PATH="$PATH" HOME="${HOME:-/tmp}" "$@"; }
COMPOSE=("$BIN/docker-compose" --env-file /dev/null -f docker-compose.yml)

echo "docker compose config: $("$BIN/docker-compose" version --short)"
compose "${REQUIRED[@]}" "${COMPOSE[@]}" config -q
for setting in "${REQUIRED[@]}"; do
  name="${setting%%=*}"
  others=()
  for other in "${REQUIRED[@]}"; do [ "$other" = "$setting" ] || others+=("$other"); done
  if errors=$(compose "${others[@]}" "${COMPOSE[@]}" config -q 2>&1); then
    echo "docker-compose.yml resolves without $name: it must be required (\${$name:?...})" >&2
    exit 1
  fi
  if ! grep -q "required variable $name is missing a value" <<<"$errors"; then
    echo "docker-compose.yml fails without $name, but not for that reason:" >&2
    echo "$errors" >&2
    exit 1
  fi
done
echo "  resolves with ${#REQUIRED[@]} required variables, and fails without each of them"

echo "hadolint: $("$BIN/hadolint" --version)"
"$BIN/hadolint" Dockerfile
echo "  Dockerfile: no findings"

sh -n deploy/mongo-keyfile.sh
if command -v caddy >/dev/null 2>&1; then
  echo "caddy: $(caddy version)"
  env -i PATH="$PATH" HOME="${HOME:-/tmp}" CHAT_HOST=chat.example.com caddy adapt --config deploy/Caddyfile --adapter caddyfile >/dev/null
  echo "  deploy/Caddyfile adapts"
else
  echo "caddy: not installed, deploy/Caddyfile not checked (apt-get install caddy)"
fi
