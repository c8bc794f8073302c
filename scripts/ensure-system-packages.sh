#!/usr/bin/env bash
# Debian packages the tests use: a real browser for the console tests, docker-compose to check the
# compose file, a real Prometheus for the telemetry connector,
# a real Alertmanager for the end-to-end alert chain. Installed only when missing; needs root (or sudo).
set -eu
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v prometheus >/dev/null || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing Debian packages: ${missing[*]}"
$SUDO apt-get update -q || true
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
