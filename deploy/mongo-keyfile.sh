#!/bin/sh
# Entrypoint of docker-compose.yml's `mongo` service: a replica set with authentication needs a
# keyFile (its members authenticate to each other with it, even when there is one member). Made once,
# on the first start, into the `mongokey` volume, readable by the mongodb user alone; then the
# image's own entrypoint runs (which creates the root user on an empty data volume).
set -eu
key=/etc/mongo-keyfile/keyfile
if [ ! -s "$key" ]; then
  umask 077
  # 756 random bytes are 1008 base64 characters: the format's maximum is 1024.
  head -c 756 /dev/urandom | base64 | tr -d '\n' >"$key.new"
  mv "$key.new" "$key"
fi
chown mongodb:mongodb "$key"
chmod 400 "$key"
exec docker-entrypoint.sh "$@"
