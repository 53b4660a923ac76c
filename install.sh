#!/usr/bin/env bash
# Installs derp on a Debian or Ubuntu server as a hardened systemd service;
# run it again to upgrade (the binary is replaced, config and data are kept).
#
#   sudo ./install.sh [--binary PATH]        install or upgrade
#   sudo ./install.sh --uninstall [--purge]  remove (--purge: the data too)
#   sudo ./install.sh --with-litestream REPLICA [--litestream-binary PATH]
#        also replicate the database continuously with Litestream, to a
#        directory (/var/backups/derp) or an S3-compatible URL (s3://bucket/derp)
#
# Without --binary it builds one with `cargo build --release` when cargo is
# there, else it takes ./target/release/derp. See docs/operations.md.
#
# Environment, for packaging and for tests/install/test_install.sh:
#   DERP_ROOT                 prefix of every path this script writes [empty]
#   SYSTEMCTL USERADD USERDEL CHOWN ID
#                             the commands it runs [systemctl useradd ...]
#   DERP_SKIP_HEALTHCHECK=1   do not wait for the service to become ready
#   DERP_HEALTH_TIMEOUT       seconds to wait for it [30]
#   DERP_HEALTHCHECK_URL      ask this URL instead of http://<bind>/readyz
#   NPM                       the npm that fetches Litestream when no binary is given [npm]
set -euo pipefail

SYSTEMCTL=${SYSTEMCTL:-systemctl}
USERADD=${USERADD:-useradd}
USERDEL=${USERDEL:-userdel}
CHOWN=${CHOWN:-chown}
ID=${ID:-id}
DERP_ROOT=${DERP_ROOT:-}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Paths as the running system sees them (in the unit and the config) ...
SERVICE=derp.service
ACCOUNT=derp
BIN=/usr/local/bin/derp
CONF_DIR=/etc/derp
CONF=$CONF_DIR/derp.toml
ENV_FILE=$CONF_DIR/derp.env
DATA=/var/lib/derp
UNIT=/etc/systemd/system/$SERVICE
LS_SERVICE=derp-litestream.service
LS_UNIT=/etc/systemd/system/$LS_SERVICE
LS_BIN=/usr/local/bin/litestream
LS_CONF=$CONF_DIR/litestream.yml
LS_ENV=$CONF_DIR/litestream.env
# The Litestream release fetched when no binary is given: npm's
# @flydotio/litestream-linux-x64 ships Litestream's own 0.3.13 binary.
LS_NPM_PACKAGE=@flydotio/litestream-linux-x64@1.0.1
NPM=${NPM:-npm}
# ... and where this script writes them.
at() { printf '%s%s' "$DERP_ROOT" "$1"; }

say() { printf 'install.sh: %s\n' "$*"; }
die() {
    printf 'install.sh: error: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# Temporary files to remove on exit (a failed run leaves none behind).
cleanup=()
remove_temporaries() {
    local f
    for f in "${cleanup[@]}"; do rm -f -- "$f"; done
}
trap remove_temporaries EXIT

binary=
action=install
purge=0
replica=
ls_binary=
while [ $# -gt 0 ]; do
    case $1 in
    --with-litestream)
        [ $# -ge 2 ] || die "--with-litestream needs a replica: a directory or an s3:// URL"
        replica=$2
        shift 2
        ;;
    --litestream-binary)
        [ $# -ge 2 ] || die "--litestream-binary needs a path"
        ls_binary=$2
        shift 2
        ;;
    --binary)
        [ $# -ge 2 ] || die "--binary needs a path"
        binary=$2
        shift 2
        ;;
    --binary=*)
        binary=${1#--binary=}
        shift
        ;;
    --uninstall)
        action=uninstall
        shift
        ;;
    --purge)
        purge=1
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
done
if [ "$purge" = 1 ] && [ "$action" != uninstall ]; then
    die "--purge only goes with --uninstall"
fi
if [ -n "$ls_binary" ] && [ -z "$replica" ]; then
    die "--litestream-binary only goes with --with-litestream"
fi
case $replica in
"" | /* | s3://*) ;;
*) die "--with-litestream: $replica is neither an absolute directory nor an s3:// URL" ;;
esac
[ "$($ID -u)" = 0 ] || die "run this as root (sudo $0 ...)"

account_exists() { $ID -u "$ACCOUNT" >/dev/null 2>&1; }

# Runs a command with the service's environment file loaded, as systemd
# would, so that `$VARIABLE` values in derp.toml resolve.
with_service_env() {
    (
        if [ -f "$(at "$ENV_FILE")" ]; then
            set -a
            # shellcheck disable=SC1090
            . "$(at "$ENV_FILE")"
            set +a
        fi
        unset DERP_BIND DERP_CONFIG
        exec "$@"
    )
}

resolve_binary() {
    if [ -z "$binary" ]; then
        if command -v cargo >/dev/null 2>&1; then
            say "building the release binary: cargo build --release --locked"
            (cd "$here" && cargo build --release --locked)
            local target=${CARGO_TARGET_DIR:-target}
            case $target in /*) ;; *) target=$here/$target ;; esac
            binary=$target/release/derp
        else
            binary=$here/target/release/derp
        fi
    fi
    if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then
        die "no executable derp at $binary: build it (cargo build --release) or pass --binary PATH"
    fi
    version=$("$binary" --version 2>&1) || die "$binary does not run here: $version"
}

install_account() {
    if account_exists; then
        say "user $ACCOUNT exists"
    else
        say "creating system user $ACCOUNT (no login shell, home $DATA)"
        $USERADD --system --user-group --home-dir "$DATA" --no-create-home \
            --shell /usr/sbin/nologin --comment "derp auth server" "$ACCOUNT"
    fi
}

install_data_dir() {
    local dir
    dir=$(at "$DATA")
    mkdir -p "$dir"
    chmod 0700 "$dir"
    # -R: after an uninstall without --purge the files belong to a removed uid.
    $CHOWN -R "$ACCOUNT:$ACCOUNT" "$dir"
}

# A new /etc/derp/derp.toml from the commented example; an existing one is
# kept as it is. Either way, the new binary must accept it.
install_config() {
    local dir conf out
    dir=$(at "$CONF_DIR")
    conf=$(at "$CONF")
    mkdir -p "$dir"
    chmod 0750 "$dir"
    $CHOWN "root:$ACCOUNT" "$dir"
    if [ -e "$conf" ]; then
        say "keeping $CONF"
        out=$(with_service_env "$binary" validate-config "$conf" 2>&1) ||
            die "the new binary rejects $CONF, so nothing was changed: $out"
        return
    fi
    local example=$here/derp.toml
    [ -f "$example" ] || die "no example config at $example: run install.sh from a derp checkout"
    local tmp=$conf.new.$$
    cleanup+=("$tmp")
    sed -e 's|^data_dir = "\./data"|data_dir = "'"$DATA"'"|' "$example" >"$tmp"
    grep -q "^data_dir = \"$DATA\"" "$tmp" ||
        die "could not set data_dir in the config made from $example"
    out=$(with_service_env "$binary" validate-config "$tmp" 2>&1) ||
        die "the config made from $example does not validate: $out"
    chmod 0640 "$tmp"
    $CHOWN "root:$ACCOUNT" "$tmp"
    mv -f "$tmp" "$conf"
    say "wrote $CONF (data_dir = \"$DATA\")"
}

install_binary() {
    local dest tmp
    dest=$(at "$BIN")
    mkdir -p "$(dirname "$dest")"
    tmp=$dest.new.$$
    cleanup+=("$tmp")
    cp "$binary" "$tmp"
    chmod 0755 "$tmp"
    $CHOWN root:root "$tmp"
    mv -f "$tmp" "$dest"
    say "installed $BIN ($version)"
}

install_unit() {
    local dest tmp
    dest=$(at "$UNIT")
    mkdir -p "$(dirname "$dest")"
    tmp=$dest.new.$$
    cleanup+=("$tmp")
    cat >"$tmp" <<EOF
# Written by derp's install.sh; running it again rewrites this file.
[Unit]
Description=derp auth server
After=network-online.target
Wants=network-online.target
# A start that keeps failing (say, a failing migration) stops being retried,
# so that each attempt's pre-migration backup does not fill the disk.
StartLimitIntervalSec=60
StartLimitBurst=5

[Service]
Type=simple
User=$ACCOUNT
Group=$ACCOUNT
WorkingDirectory=$DATA
EnvironmentFile=-$ENV_FILE
Environment=RUST_LOG=info
ExecStart=$BIN serve --config $CONF
ExecReload=/bin/kill -HUP \$MAINPID
Restart=on-failure
RestartSec=2
# One descriptor a connection: room for [server] max_connections (10000 by
# default) and the database, well above the usual soft limit of 1024.
LimitNOFILE=65536
UMask=0077
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ReadWritePaths=$DATA
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
EOF
    chmod 0644 "$tmp"
    mv -f "$tmp" "$dest"
    say "wrote $UNIT"
}

wait_until_ready() {
    if [ "${DERP_SKIP_HEALTHCHECK:-0}" = 1 ]; then
        say "not waiting for the service (DERP_SKIP_HEALTHCHECK=1)"
        return
    fi
    local timeout=${DERP_HEALTH_TIMEOUT:-30} out=""
    local deadline=$((SECONDS + timeout))
    local args=(healthcheck --config "$(at "$CONF")")
    if [ -n "${DERP_HEALTHCHECK_URL:-}" ]; then
        args=(healthcheck --url "$DERP_HEALTHCHECK_URL")
    fi
    say "waiting up to ${timeout}s for $SERVICE to answer /readyz"
    while :; do
        if out=$(with_service_env "$(at "$BIN")" "${args[@]}" 2>&1); then
            say "$out"
            return
        fi
        [ "$SECONDS" -lt "$deadline" ] || break
        sleep 1
    done
    printf 'install.sh: error: %s did not become ready within %ss: %s\n' "$SERVICE" "$timeout" "$out" >&2
    printf '  look at: systemctl status %s; journalctl -u %s -n 50\n' "$SERVICE" "$SERVICE" >&2
    exit 1
}

# Litestream: the binary (given, on PATH, or fetched with npm), its config
# and a companion unit that replicates while derp runs. WAL mode and derp's
# busy timeout are what Litestream needs; derp checkpoints only at stop, and
# a checkpoint that Litestream's read lock holds back is simply retried.
install_litestream() {
    local dest tmp src=$ls_binary
    dest=$(at "$LS_BIN")
    if [ -z "$src" ] && command -v litestream >/dev/null 2>&1; then
        src=$(command -v litestream)
    fi
    if [ -z "$src" ]; then
        command -v "$NPM" >/dev/null 2>&1 ||
            die "no litestream binary: pass --litestream-binary PATH (from github.com/benbjohnson/litestream/releases) or install npm"
        local prefix
        prefix=$(mktemp -d)
        say "fetching Litestream: $NPM install $LS_NPM_PACKAGE"
        timeout 300 "$NPM" install --silent --no-audit --no-fund --prefix "$prefix" "$LS_NPM_PACKAGE" >/dev/null ||
            die "npm could not fetch $LS_NPM_PACKAGE"
        src=$(find "$prefix/node_modules/@flydotio" -type f -name litestream | head -n 1)
        [ -n "$src" ] || die "$LS_NPM_PACKAGE holds no litestream binary"
    fi
    [ -x "$src" ] || die "$src is not an executable litestream"
    mkdir -p "$(dirname "$dest")"
    tmp=$dest.new.$$
    cleanup+=("$tmp")
    cp "$src" "$tmp"
    chmod 0755 "$tmp"
    $CHOWN root:root "$tmp"
    mv -f "$tmp" "$dest"
    say "installed $LS_BIN ($("$dest" version 2>/dev/null || echo '?'))"

    local replica_yaml
    case $replica in
    s3://*)
        replica_yaml="      - url: $replica"
        if [ ! -e "$(at "$LS_ENV")" ]; then
            printf '%s\n' "# LITESTREAM_ACCESS_KEY_ID=..." "# LITESTREAM_SECRET_ACCESS_KEY=..." >"$(at "$LS_ENV")"
            chmod 0640 "$(at "$LS_ENV")"
            $CHOWN "root:$ACCOUNT" "$(at "$LS_ENV")"
        fi
        ;;
    *)
        replica_yaml="      - type: file
        path: $replica"
        mkdir -p "$(at "$replica")"
        chmod 0700 "$(at "$replica")"
        $CHOWN -R "$ACCOUNT:$ACCOUNT" "$(at "$replica")"
        ;;
    esac
    tmp=$(at "$LS_CONF").new.$$
    cleanup+=("$tmp")
    {
        echo "# Written by derp's install.sh --with-litestream; running it again rewrites it."
        echo "# Restore drill: docs/operations.md, \"Continuous replication\"."
        echo "dbs:"
        echo "  - path: $DATA/derp.db"
        echo "    replicas:"
        echo "$replica_yaml"
        echo "        sync-interval: 1s"
    } >"$tmp"
    chmod 0640 "$tmp"
    $CHOWN "root:$ACCOUNT" "$tmp"
    mv -f "$tmp" "$(at "$LS_CONF")"
    say "wrote $LS_CONF (replica: $replica)"

    local writable=$DATA
    case $replica in /*) writable="$DATA $replica" ;; esac
    tmp=$(at "$LS_UNIT").new.$$
    cleanup+=("$tmp")
    {
        echo "# Written by derp's install.sh --with-litestream; running it again rewrites this file."
        echo "[Unit]"
        echo "Description=Litestream: continuous replication of derp's database"
        echo "After=$SERVICE network-online.target"
        echo "Wants=network-online.target"
        echo
        echo "[Service]"
        echo "Type=simple"
        echo "User=$ACCOUNT"
        echo "Group=$ACCOUNT"
        echo "EnvironmentFile=-$LS_ENV"
        echo "ExecStart=$LS_BIN replicate -config $LS_CONF"
        echo "Restart=always"
        echo "RestartSec=2"
        echo "UMask=0077"
        echo "NoNewPrivileges=yes"
        echo "ProtectSystem=strict"
        echo "ProtectHome=yes"
        echo "PrivateTmp=yes"
        echo "ReadWritePaths=$writable"
        echo
        echo "[Install]"
        echo "WantedBy=multi-user.target"
    } >"$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$(at "$LS_UNIT")"
    say "wrote $LS_UNIT"
}

do_install() {
    resolve_binary
    local upgrade=0
    [ -e "$(at "$BIN")" ] && upgrade=1
    install_account
    install_data_dir
    install_config
    if [ "$upgrade" = 1 ]; then
        say "upgrading: stopping $SERVICE"
        $SYSTEMCTL stop "$SERVICE" || true
    fi
    install_binary
    install_unit
    if [ -n "$replica" ]; then install_litestream; fi
    $SYSTEMCTL daemon-reload
    $SYSTEMCTL enable --now "$SERVICE"
    wait_until_ready
    if [ -n "$replica" ]; then
        $SYSTEMCTL enable "$LS_SERVICE"
        $SYSTEMCTL restart "$LS_SERVICE"
        say "started $LS_SERVICE"
    fi

    local bind
    bind=$(with_service_env "$(at "$BIN")" validate-config "$(at "$CONF")" 2>/dev/null |
        sed -n 's/.*bind \([^,]*\),.*/\1/p') || true
    bind=${bind:-127.0.0.1:8080}
    cat <<EOF

derp is $([ "$upgrade" = 1 ] && echo upgraded || echo installed): $version, service $SERVICE.
  It listens on http://$bind (bind in $CONF).
  Try:      curl -s http://$bind/readyz
  Public:   put a TLS reverse proxy (Caddy, nginx) in front of it, set public_url
            in $CONF, then: systemctl restart derp
  Secrets:  KEY=value lines in $ENV_FILE (0640 root:$ACCOUNT), used as \$KEY in derp.toml
  Logs:     journalctl -u derp -f
  Backup:   sudo -u $ACCOUNT $BIN backup --config $CONF $DATA/backup.db
            and keep $DATA/secrets.key with it
  More:     docs/operations.md
EOF
    if [ -n "$replica" ]; then
        echo "  Replica:  $LS_SERVICE replicates $DATA/derp.db to $replica (lag about 1 s);"
        echo "            restore drill in docs/operations.md. Keep a copy of $DATA/secrets.key:"
        echo "            the replica holds the database only."
    fi
}

do_uninstall() {
    if [ -e "$(at "$LS_UNIT")" ]; then
        say "stopping and disabling $LS_SERVICE (the replica itself is kept)"
        $SYSTEMCTL disable --now "$LS_SERVICE" || true
        rm -f "$(at "$LS_UNIT")" "$(at "$LS_BIN")"
    fi
    say "stopping and disabling $SERVICE"
    $SYSTEMCTL disable --now "$SERVICE" || true
    rm -f "$(at "$UNIT")"
    $SYSTEMCTL daemon-reload || true
    rm -f "$(at "$BIN")"
    rm -rf "$(at "$CONF_DIR")"
    if account_exists; then
        $USERDEL "$ACCOUNT"
    fi
    say "removed $UNIT, $BIN, $CONF_DIR and user $ACCOUNT"
    if [ "$purge" = 1 ]; then
        rm -rf "$(at "$DATA")"
        say "removed $DATA (--purge)"
    else
        say "kept $DATA (the database); --uninstall --purge removes it"
    fi
}

case $action in
install) do_install ;;
uninstall) do_uninstall ;;
esac
