#!/usr/bin/env bash
# PostgreSQL from Debian's packages for the suite's PostgreSQL run and the
# bench (the server binaries only: the cluster is made by cluster.sh, and the
# package's own cluster is not used). Installs as root when missing.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    timeout 600 apt-get update -qq
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq postgresql >/dev/null
else
    echo "PostgreSQL is missing: install it (as root: apt-get install postgresql)" >&2
    exit 1
fi
