#!/usr/bin/env bash
# make soak: SOAK_DEVICES (500) TLS devices publish QoS 1 telemetry to one `hearth serve` for
# SOAK_SECONDS (3600) at SOAK_RATE messages/s in all (open loop, bench/loadgen). Every
# SOAK_SAMPLE_S seconds it records the server's open descriptors and memory (RSS and PSS from
# /proc); at the end it prints the drift from the first sample after SOAK_WARMUP_S to the last,
# the loadgen's result and every warning or error the server logged. A report, not a test: it
# exits non-zero only when the run itself failed (server gone, loadgen failed, errors logged).
# 127.0.0.1 only; everything it starts is stopped by PID.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEVICES=${SOAK_DEVICES:-500}
SECONDS_RUN=${SOAK_SECONDS:-3600}
RATE=${SOAK_RATE:-500}
SAMPLE_S=${SOAK_SAMPLE_S:-30}
WARMUP_S=${SOAK_WARMUP_S:-300}
[ "$WARMUP_S" -lt "$SECONDS_RUN" ] || WARMUP_S=$(( SECONDS_RUN / 4 ))
: "${HEARTH:=$ROOT/bin/hearth}" "${LOADGEN:=$ROOT/build/bench/loadgen}"

T=$(mktemp -d /tmp/hearth-soak.XXXXXX)
SERVER_PID="" LG_PID=""
cleanup() {
	[ -n "$LG_PID" ] && kill "$LG_PID" 2>/dev/null && wait "$LG_PID" 2>/dev/null
	if [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; then
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "soak: $*" >&2; exit 1; }
kib() { awk -v k="$2:" '$1 == k { print $2; exit }' "/proc/$1/smaps_rollup"; }
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }

"$HEARTH" init --data "$T/data" >/dev/null
"$HEARTH" model set --data "$T/data" --model soak --policy "$ROOT/schema/policies/smart-heater.json" >/dev/null
echo "soak: creating $DEVICES devices ..." >&2
seq -f 'soak-%05g' 1 "$DEVICES" >"$T/ids"
xargs -P 4 -I{} "$HEARTH" device add --data "$T/data" --id {} --model soak --genkey --out "$T/certs" \
	<"$T/ids" >/dev/null 2>"$T/add.err" || { head -n 5 "$T/add.err" >&2; die "device add failed"; }

# All devices come from 127.0.0.1: the per-address limits are for floods, not for this.
"$HEARTH" serve --data "$T/data" --mqtt 127.0.0.1:0 --api 127.0.0.1:0 \
	--max-connections-per-address 0 --max-handshakes-per-address 0 2>"$T/serve.log" &
SERVER_PID=$!
for _ in $(seq 100); do grep -q 'MQTT endpoint listening on' "$T/serve.log" && break; sleep 0.1; done
PORT=$(sed -n 's/.*MQTT endpoint listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/serve.log" | head -n 1)
[ -n "$PORT" ] || die "the server did not start"

"$LOADGEN" --port "$PORT" --certdir "$T/certs" --ids "$T/ids" --server-pid "$SERVER_PID" \
	--publish --clients "$DEVICES" --duration "$SECONDS_RUN" --rate "$RATE" \
	--timeout $(( SECONDS_RUN + 300 )) >"$T/lg.out" 2>"$T/lg.err" &
LG_PID=$!

echo "seconds fds rss_kib pss_kib" >"$T/samples"
start=$SECONDS
# Sampled while every device is publishing: the loadgen's connect phase comes first, so the
# samples stop a sample short of the end.
while kill -0 "$LG_PID" 2>/dev/null && [ $(( SECONDS - start + SAMPLE_S )) -lt "$SECONDS_RUN" ]; do
	kill -0 "$SERVER_PID" 2>/dev/null || die "the server is gone; its log: $(tail -n 5 "$T/serve.log")"
	echo "$(( SECONDS - start )) $(fds "$SERVER_PID") $(kib "$SERVER_PID" Rss) $(kib "$SERVER_PID" Pss)" >>"$T/samples"
	sleep "$SAMPLE_S"
done
rc=0
wait "$LG_PID" || rc=$?
LG_PID=""

echo "hearth soak, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs, $(uname -r)"
echo "$DEVICES devices, $RATE msgs/s in all, $SECONDS_RUN s; samples every $SAMPLE_S s, drift from $WARMUP_S s on"
awk -v w="$WARMUP_S" 'NR > 1 && $1 >= w { if (!b) { b = 1; f0 = $2; r0 = $3; p0 = $4 } f1 = $2; r1 = $3; p1 = $4; n++ }
	END {
		if (!n) { print "no samples after the warm-up"; exit }
		printf "descriptors  %d -> %d  (%+.1f %%)\n", f0, f1, 100 * (f1 - f0) / f0
		printf "RSS KiB      %d -> %d  (%+.1f %%)\n", r0, r1, 100 * (r1 - r0) / r0
		printf "PSS KiB      %d -> %d  (%+.1f %%)\n", p0, p1, 100 * (p1 - p0) / p0
	}' "$T/samples"
grep '^result' "$T/lg.out" || echo "loadgen: no result (exit $rc): $(tail -n 3 "$T/lg.err")"
errors=$(grep -cE 'hearth (warning|error):' "$T/serve.log" || true)
echo "server warnings and errors logged: $errors"
grep -E 'hearth (warning|error):' "$T/serve.log" | head -n 10 || true
[ "$rc" -eq 0 ] && [ "$errors" -eq 0 ]
