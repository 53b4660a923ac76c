#!/usr/bin/env bash
# Runs moto_server ($MOTO_BIN) on 127.0.0.1:$1 for a test, and stops it when
# this script gets TERM/INT/HUP or when the test process that started it is
# gone (even after a SIGKILL), so no emulator outlives its test.
set -u
port="$1"
parent=$PPID
"$MOTO_BIN" -H 127.0.0.1 -p "$port" &
child=$!
stop() {
    kill "$child" 2>/dev/null
    wait "$child" 2>/dev/null
    exit 0
}
trap stop TERM INT HUP
while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do
    sleep 0.5
done
stop
