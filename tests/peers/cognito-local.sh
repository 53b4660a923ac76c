#!/usr/bin/env bash
# Runs cognito-local ($COGNITO_LOCAL_BIN) on 127.0.0.1:$1 with its state in
# the directory $2 (it keeps `.cognito/` in its working directory), and
# confirmation codes fixed to 123456. Stops it when this script gets
# TERM/INT/HUP or when the test process that started it is gone (even after
# a SIGKILL), so no emulator outlives its test.
set -u
port="$1"
dir="$2"
parent=$PPID
cd "$dir" || exit 1
HOST=127.0.0.1 PORT="$port" CODE=123456 "$COGNITO_LOCAL_BIN" &
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
