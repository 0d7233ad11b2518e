#!/usr/bin/env bash
# Installs the system packages the project needs when missing: Java 17+, Maven and openssl for the
# Kafka broker, the PostgreSQL server for `newsfeed postgres` and the tests, jemalloc for the worker
# (worker.allocator), and headless Chromium for the dashboard's browser test. Uses Debian's apt; does
# nothing when everything is already there.
set -euo pipefail

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
# The broker's SASL_SSL listener gets its CA and certificate from the openssl command.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# The server binaries live outside PATH (/usr/lib/postgresql/<major>/bin); any installed major will do.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
# `newsfeed run` preloads it into the worker; the library has no command to look for.
compgen -G '/usr/lib/*/libjemalloc.so.2' >/dev/null || compgen -G '/usr/lib*/libjemalloc.so.2' >/dev/null \
  || missing+=(libjemalloc2)
# Debian names its package and binary chromium; Ubuntu-era machines may already have chromium-browser.
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "newsfeed: please install: ${missing[*]} (no apt-get on this machine)" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "newsfeed: installing ${missing[*]} with apt-get"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
