#!/usr/bin/env bash
# Build prerequisites from Debian: webauthn-rs (passkeys) links OpenSSL, so
# building derp needs libssl-dev and pkg-config (see docs/decisions.md).
# Installs them as root when `pkg-config --exists openssl` fails.
set -euo pipefail
if pkg-config --exists openssl 2>/dev/null; then
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    timeout 600 apt-get update -qq
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq libssl-dev pkg-config >/dev/null
else
    echo "libssl-dev and pkg-config are missing: install them (as root: apt-get install libssl-dev pkg-config)" >&2
    exit 1
fi
