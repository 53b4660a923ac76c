#!/usr/bin/env bash
# Tests install.sh without root and without touching the real system: every
# path goes under a temporary DERP_ROOT, and systemctl, useradd, userdel,
# chown and id are stubs that log their arguments. The systemctl stub runs the
# installed binary itself (on a free port, with a data directory in the temp
# dir) for `enable --now` and kills it for `stop`, so that install.sh's wait
# for `derp healthcheck` meets a real server. Real systemd is not exercised:
# see docs/operations.md.
#
#   tests/install/test_install.sh            (DERP_BIN: the binary [target/debug/derp])
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${DERP_BIN:-$repo/target/debug/derp}
[ -x "$bin" ] || {
    echo "test_install: no derp binary at $bin (cargo build first)" >&2
    exit 2
}

T=$(mktemp -d "${TMPDIR:-/tmp}/derp-install-test.XXXXXX")
[ -n "$T" ] && [ -d "$T" ] || exit 2
R=$T/root
mkdir -p "$R" "$T/stubs" "$T/state" "$T/live"
export DERP_ROOT=$R
CALLS=$T/calls.log
: >"$CALLS"

# Stops the server the systemctl stub started (by its recorded pid), waiting
# up to 10 s for it to exit, as `systemctl stop` would.
cat >"$T/stop-live" <<EOF
#!/usr/bin/env bash
pidfile="$T/state/pid"
[ -f "\$pidfile" ] || exit 0
pid=\$(cat "\$pidfile")
rm -f "\$pidfile"
kill "\$pid" 2>/dev/null || exit 0
for _ in \$(seq 100); do
    state=\$(awk '{print \$3}' "/proc/\$pid/stat" 2>/dev/null) || break
    [ "\$state" = Z ] && break
    sleep 0.1
done
exit 0
EOF
chmod +x "$T/stop-live"
stop_live() { "$T/stop-live"; }
trap 'stop_live; rm -rf "$T"' EXIT

# A free loopback port for the server the systemctl stub starts.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + RANDOM % 20000)))
cat >"$T/live.toml" <<EOF
[server]
bind = "127.0.0.1:$port"
data_dir = "$T/live/data"
[auth.native]
EOF

# --- stubs -----------------------------------------------------------------
stub() { # name, body
    printf '#!/usr/bin/env bash\necho "%s $*" >>"%s"\n%s\n' "$1" "$CALLS" "$2" >"$T/stubs/$1"
    chmod +x "$T/stubs/$1"
}
stub useradd "touch '$T/state/user'"
stub userdel "rm -f '$T/state/user'"
stub chown ":"
# `id -u` is root unless FAKE_UID says otherwise; `id -u derp` exists once added.
stub id "if [ \$# -eq 1 ]; then echo \${FAKE_UID:-0}; elif [ -f '$T/state/user' ]; then echo 999; else exit 1; fi"
cat >"$T/stubs/systemctl" <<EOF
#!/usr/bin/env bash
echo "systemctl \$*" >>"$CALLS"
case "\$*" in
"enable --now derp.service" | "start derp.service")
    if [ "\${STUB_NO_START:-0}" != 1 ] && [ ! -f "$T/state/pid" ]; then
        "$R/usr/local/bin/derp" serve --config "$T/live.toml" >>"$T/serve.log" 2>&1 </dev/null &
        echo \$! >"$T/state/pid"
    fi ;;
"stop derp.service" | "disable --now derp.service")
    "$T/stop-live" ;;
esac
exit 0
EOF
chmod +x "$T/stubs/systemctl"
export SYSTEMCTL=$T/stubs/systemctl USERADD=$T/stubs/useradd USERDEL=$T/stubs/userdel
export CHOWN=$T/stubs/chown ID=$T/stubs/id
export DERP_HEALTHCHECK_URL=http://127.0.0.1:$port/readyz DERP_HEALTH_TIMEOUT=30
unset DERP_SKIP_HEALTHCHECK DERP_BIND DERP_CONFIG

# --- assertions ------------------------------------------------------------
passed=0
failed=0
check() { # description, command...
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then
        passed=$((passed + 1))
        echo "  ok   $what"
    else
        failed=$((failed + 1))
        echo "  FAIL $what"
    fi
}
mode_is() { [ "$(stat -c %a "$2")" = "$1" ]; }
called() { grep -qxF -- "$1" "$CALLS"; }
count_calls() { grep -cxF -- "$1" "$CALLS"; }
# in_order SINCE A B: after line SINCE of the log, call A comes before call B.
in_order() {
    local a b
    a=$(tail -n +"$(($1 + 1))" "$CALLS" | grep -nxF -- "$2" | head -1 | cut -d: -f1)
    b=$(tail -n +"$(($1 + 1))" "$CALLS" | grep -nxF -- "$3" | head -1 | cut -d: -f1)
    [ -n "$a" ] && [ -n "$b" ] && [ "$a" -lt "$b" ]
}
none_since() { ! tail -n +"$(($1 + 1))" "$CALLS" | grep -q -- "$2"; }
lines() { wc -l <"$CALLS"; }
run_install() { # output to $T/out; returns install.sh's status
    timeout 120 "$repo/install.sh" "$@" >"$T/out" 2>&1
}
out_has() { grep -qF -- "$1" "$T/out"; }

BIN=$R/usr/local/bin/derp
CONF=$R/etc/derp/derp.toml
DATA=$R/var/lib/derp
UNIT=$R/etc/systemd/system/derp.service

echo "== fresh install"
run_install --binary "$bin"
status=$?
check "install.sh exits 0" [ "$status" = 0 ]
[ "$status" = 0 ] || sed 's/^/     | /' "$T/out"
check "the binary is at /usr/local/bin/derp, 0755" mode_is 755 "$BIN"
check "it is the given binary" cmp -s "$bin" "$BIN"
check "the data dir is /var/lib/derp, 0700" mode_is 700 "$DATA"
check "/etc/derp is 0750" mode_is 750 "$R/etc/derp"
check "the config is 0640" mode_is 640 "$CONF"
check "the config has data_dir = /var/lib/derp" grep -q '^data_dir = "/var/lib/derp"' "$CONF"
check "the config keeps bind at 127.0.0.1:8080" grep -q '^bind = "127.0.0.1:8080"' "$CONF"
check "the config keeps the example's comments" grep -q '^# \[auth.cognito\]' "$CONF"
check "the generated config passes derp validate-config" "$BIN" validate-config "$CONF"
# shellcheck disable=SC2016 # $MAINPID is literal in the unit
for line in 'User=derp' 'ExecStart=/usr/local/bin/derp serve --config /etc/derp/derp.toml' \
    'NoNewPrivileges=yes' 'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' \
    'ReadWritePaths=/var/lib/derp' 'Restart=on-failure' 'RestartSec=2' 'CapabilityBoundingSet=' \
    'ProtectKernelTunables=yes' 'ProtectControlGroups=yes' 'RestrictSUIDSGID=yes' \
    'LockPersonality=yes' 'ExecReload=/bin/kill -HUP $MAINPID' 'WantedBy=multi-user.target' \
    'LimitNOFILE=65536'; do
    check "the unit has $line" grep -qxF -- "$line" "$UNIT"
done
check "the unit is 0644" mode_is 644 "$UNIT"
# systemd's own parser, on a copy whose ExecStart exists on this machine.
if command -v systemd-analyze >/dev/null 2>&1; then
    mkdir -p "$T/verify"
    sed "s|/usr/local/bin/derp|$BIN|" "$UNIT" >"$T/verify/derp.service"
    systemd-analyze verify "$T/verify/derp.service" >"$T/verify.out" 2>&1
    check "systemd-analyze verify accepts every directive of the unit" \
        bash -c "! grep -Ei 'unknown|ignoring|invalid|failed to parse' '$T/verify.out'"
    grep -Ei 'unknown|ignoring|invalid|failed to parse' "$T/verify.out" | sed 's/^/     | /'
else
    echo "  skip systemd-analyze verify (not installed)"
fi
check "no DERP_ROOT path leaked into the unit" bash -c "! grep -qF '$R' '$UNIT'"
check "useradd made a system user with no login shell, home /var/lib/derp" \
    called "useradd --system --user-group --home-dir /var/lib/derp --no-create-home --shell /usr/sbin/nologin --comment derp auth server derp"
check "the data dir was given to derp" called "chown -R derp:derp $DATA"
check "/etc/derp is root:derp" called "chown root:derp $R/etc/derp"
check "the config is root:derp" grep -qF "chown root:derp $CONF.new." "$CALLS"
check "the binary is root:root" grep -qF "chown root:root $BIN.new." "$CALLS"
check "systemctl daemon-reload" called "systemctl daemon-reload"
check "systemctl enable --now derp.service" called "systemctl enable --now derp.service"
check "daemon-reload came before enable --now" in_order 0 "systemctl daemon-reload" "systemctl enable --now derp.service"
check "it waited for a ready server" out_has "ready: $DERP_HEALTHCHECK_URL"
check "it says how to reach derp" out_has "http://127.0.0.1:8080"
check "nothing was stopped on a fresh install" none_since 0 "^systemctl stop"
first_pid=$(cat "$T/state/pid" 2>/dev/null)

echo "== upgrade: a second run keeps config and data, replaces the binary"
echo '# edited by the admin' >>"$CONF"
sed -i 's/^product_name = .*/product_name = "Acme"/' "$CONF"
cp "$CONF" "$T/conf.before"
echo "some data" >"$DATA/keep.txt"
cp "$bin" "$T/derp-v2"
printf 'a newer build' >>"$T/derp-v2" # still runs: trailing bytes are ignored
chmod 755 "$T/derp-v2"
since=$(lines)
run_install --binary "$T/derp-v2"
status=$?
check "install.sh exits 0" [ "$status" = 0 ]
[ "$status" = 0 ] || sed 's/^/     | /' "$T/out"
check "the edited config is kept byte for byte" cmp -s "$T/conf.before" "$CONF"
check "the binary is the new one" cmp -s "$T/derp-v2" "$BIN"
check "the binary is still 0755" mode_is 755 "$BIN"
check "the data is kept" grep -qx "some data" "$DATA/keep.txt"
check "the data dir is still 0700" mode_is 700 "$DATA"
check "useradd was not run again" [ "$(count_calls "useradd --system --user-group --home-dir /var/lib/derp --no-create-home --shell /usr/sbin/nologin --comment derp auth server derp")" = 1 ]
check "the service was stopped, then started again" in_order "$since" "systemctl stop derp.service" "systemctl enable --now derp.service"
check "daemon-reload ran again for the rewritten unit" in_order "$since" "systemctl daemon-reload" "systemctl enable --now derp.service"
check "the new binary answers" out_has "ready: $DERP_HEALTHCHECK_URL"
check "a new server process runs" bash -c "[ -n '$first_pid' ] && [ \"\$(cat '$T/state/pid')\" != '$first_pid' ]"
check "it says it upgraded" out_has "derp is upgraded"

echo "== upgrade refused when the new binary rejects the config"
cp "$CONF" "$T/conf.good"
printf '\n[server2]\nbogus = 1\n' >>"$CONF"
cp "$bin" "$T/derp-v3"
printf 'yet another build' >>"$T/derp-v3"
chmod 755 "$T/derp-v3"
since=$(lines)
run_install --binary "$T/derp-v3"
check "install.sh fails" [ $? != 0 ]
check "it names the unknown key" out_has "server2"
check "the running binary was not replaced" cmp -s "$T/derp-v2" "$BIN"
check "the service was not stopped" none_since "$since" "^systemctl"
cp "$T/conf.good" "$CONF"

echo "== a service that never becomes ready fails the install"
stop_live
STUB_NO_START=1 DERP_HEALTH_TIMEOUT=2 run_install --binary "$bin"
check "install.sh fails" [ $? != 0 ]
check "it says the service did not become ready" out_has "did not become ready within 2s"
check "it points at the logs" out_has "journalctl -u derp.service"

echo "== misuse"
run_install --purge
check "--purge without --uninstall is refused" [ $? != 0 ]
run_install --frobnicate
check "an unknown argument is refused" [ $? != 0 ]
FAKE_UID=1000 run_install --binary "$bin"
check "a non-root user is refused" [ $? != 0 ]
check "  ... saying to run it as root" out_has "as root"
run_install --binary "$T/does-not-exist"
check "a missing binary is refused" [ $? != 0 ]

echo "== uninstall keeps the data"
run_install --uninstall
check "install.sh --uninstall exits 0" [ $? = 0 ]
check "the unit is gone" [ ! -e "$UNIT" ]
check "the binary is gone" [ ! -e "$BIN" ]
check "/etc/derp is gone" [ ! -e "$R/etc/derp" ]
check "the data dir is kept" grep -qx "some data" "$DATA/keep.txt"
check "the service was disabled and stopped" called "systemctl disable --now derp.service"
check "the user was removed" called "userdel derp"
check "no server is left running" bash -c "[ ! -f '$T/state/pid' ]"

echo "== reinstall over kept data, without waiting for health"
DERP_SKIP_HEALTHCHECK=1 run_install --binary "$bin"
check "install.sh exits 0" [ $? = 0 ]
check "it did not wait" out_has "DERP_SKIP_HEALTHCHECK=1"
check "the kept data is still there" grep -qx "some data" "$DATA/keep.txt"
check "a fresh config was written" grep -q '^data_dir = "/var/lib/derp"' "$CONF"
check "the user was created again" [ "$(count_calls "useradd --system --user-group --home-dir /var/lib/derp --no-create-home --shell /usr/sbin/nologin --comment derp auth server derp")" = 2 ]
stop_live

echo "== --with-litestream: a companion unit replicating to a directory"
printf '#!/usr/bin/env bash\necho v0.3.13\n' >"$T/litestream"
chmod +x "$T/litestream"
before=$(lines)
DERP_SKIP_HEALTHCHECK=1 run_install --binary "$bin" --with-litestream /var/backups/derp --litestream-binary "$T/litestream"
check "install.sh --with-litestream exits 0" [ $? = 0 ]
LS_CONF=$R/etc/derp/litestream.yml
LS_UNIT=$R/etc/systemd/system/derp-litestream.service
check "litestream is at /usr/local/bin/litestream, 0755" mode_is 755 "$R/usr/local/bin/litestream"
check "its config replicates /var/lib/derp/derp.db" grep -qx '  - path: /var/lib/derp/derp.db' "$LS_CONF"
check "to the directory, every second" bash -c "grep -qx '        path: /var/backups/derp' '$LS_CONF' && grep -qx '        sync-interval: 1s' '$LS_CONF'"
check "the config is 0640 root:derp" bash -c "[ \"\$(stat -c %a '$LS_CONF')\" = 640 ] && grep -qF 'chown root:derp $LS_CONF.new.' '$CALLS'"
check "the replica directory is 0700, given to derp" bash -c "[ \"\$(stat -c %a '$R/var/backups/derp')\" = 700 ] && grep -qxF 'chown -R derp:derp $R/var/backups/derp' '$CALLS'"
check "the unit runs litestream replicate as derp" bash -c "grep -qx 'ExecStart=/usr/local/bin/litestream replicate -config /etc/derp/litestream.yml' '$LS_UNIT' && grep -qx 'User=derp' '$LS_UNIT'"
check "the unit may write only the data and the replica" grep -qx 'ReadWritePaths=/var/lib/derp /var/backups/derp' "$LS_UNIT"
check "no DERP_ROOT path leaked into the Litestream files" bash -c "! grep -qF '$R' '$LS_UNIT' '$LS_CONF'"
check "the unit is enabled and started after derp" in_order "$before" "systemctl enable --now derp.service" "systemctl restart derp-litestream.service"
check "it says where the replica is" out_has "replicates /var/lib/derp/derp.db to /var/backups/derp"
stop_live
DERP_SKIP_HEALTHCHECK=1 run_install --binary "$bin" --with-litestream relative/dir --litestream-binary "$T/litestream"
check "a relative replica directory is refused" [ $? != 0 ]
run_install --binary "$bin" --litestream-binary "$T/litestream"
check "--litestream-binary alone is refused" [ $? != 0 ]
stop_live

echo "== uninstall --purge removes the data"
run_install --uninstall --purge
check "the Litestream unit was stopped and removed" bash -c "grep -qxF 'systemctl disable --now derp-litestream.service' '$CALLS' && [ ! -e '$LS_UNIT' ] && [ ! -e '$R/usr/local/bin/litestream' ]"
check "install.sh --uninstall --purge exits 0" [ $? = 0 ]
check "the data dir is gone" [ ! -e "$DATA" ]
check "nothing is left under DERP_ROOT but empty directories" bash -c "[ -z \"\$(find '$R' -type f)\" ]"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
