#!/usr/bin/env bash
# make bench: hearth's MQTT endpoint under load from bench/loadgen, on this machine, against a fresh
# data directory. Prints one table and writes it to bench/results/latest.txt. The numbers compare
# runs on one machine; nothing here is a test and nothing is asserted about speed.
#
# Sizes can be changed from the environment (BENCH_HANDSHAKES, BENCH_CONCURRENCY, BENCH_RESUMED,
# BENCH_IDLE, BENCH_HOLD, BENCH_PUBLISHERS, BENCH_MESSAGES, BENCH_SUSTAINED, BENCH_WINDOW,
# BENCH_TIMEOUT, BENCH_BUDGET), and
# BENCH_SERVE_ARGS adds options to `hearth serve` (e.g. "--handshake-threads 0").
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
HANDSHAKES=${BENCH_HANDSHAKES:-2000}
CONCURRENCY=${BENCH_CONCURRENCY:-50}
RESUMED=${BENCH_RESUMED:-2000}
IDLE=${BENCH_IDLE:-1000}
HOLD=${BENCH_HOLD:-5}
PUBLISHERS=${BENCH_PUBLISHERS:-100}
MESSAGES=${BENCH_MESSAGES:-200}
# 100 x 200 messages are over in tens of milliseconds here, too short for a steady rate or a CPU
# time (10 ms ticks): a second, longer run gives those. 0 skips it.
SUSTAINED=${BENCH_SUSTAINED:-2000}
WINDOW=${BENCH_WINDOW:-10}
TIMEOUT=${BENCH_TIMEOUT:-120}   # at most, for each loadgen run and each wait in this script
BUDGET=${BENCH_BUDGET:-170}     # seconds for everything: a stalling server cannot make it longer
RESULTS=$ROOT/bench/results
OUT=$RESULTS/latest.txt

if [ -z "${HEARTH:-}" ] || [ -z "${LOADGEN:-}" ]; then
	make -C "$ROOT" --no-print-directory bin/hearth build/bench/loadgen >&2
	HEARTH=$ROOT/bin/hearth LOADGEN=$ROOT/build/bench/loadgen
fi

T=$(mktemp -d /tmp/hearth-bench.XXXXXX)
SERVER_PID="" LG_PID=""
cleanup() {
	# By PID only: this script's own children, nothing else.
	[ -n "$LG_PID" ] && kill "$LG_PID" 2>/dev/null && wait "$LG_PID" 2>/dev/null
	if [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; then
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
	echo "bench: $*" >&2
	if [ -s "$T/serve.log" ]; then
		echo "bench: last lines of the server log:" >&2
		tail -n 20 "$T/serve.log" | sed 's/^/  | /' >&2
	fi
	exit 1
}

# Server on one core, load generator on another, so neither steals the other's CPU.
SERVER_PIN=() LOAD_PIN=() PINNING="none (taskset missing or one core)"
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ] && taskset -c 1 true 2>/dev/null; then
	SERVER_PIN=(taskset -c 0) LOAD_PIN=(taskset -c 1) PINNING="server on CPU 0, loadgen on CPU 1"
fi

server_alive() { [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; }
server_stopped() { ! kill -0 "$SERVER_PID" 2>/dev/null; }

# wait_until SECONDS CMD...: poll CMD every 0.1 s, bounded.
wait_until() {
	local i=0 limit=$(( $1 * 10 )); shift
	while [ $i -lt $limit ]; do "$@" && return 0; sleep 0.1; i=$((i + 1)); done
	return 1
}

# smaps_kib PID FIELD: Rss or Pss of PID in KiB, from /proc/PID/smaps_rollup.
smaps_kib() { awk -v k="$2:" '$1 == k { print $2; exit }' "/proc/$1/smaps_rollup"; }
fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }
# The server has closed every connection of a run once it holds no more descriptors than before.
fds_back() { [ "$(fd_count "$SERVER_PID")" -le "$FDS0" ]; }
ready_or_gone() { [ -e "$T/ready" ] || ! kill -0 "$LG_PID" 2>/dev/null; }
# cpu_jiffies: busy and total jiffies of all CPUs since boot, from /proc/stat.
cpu_jiffies() {
	awk '$1 == "cpu" { t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t; exit }' /proc/stat
}

# field KEY FILE: the value of KEY=VALUE on the loadgen's result line ("?" when missing).
field() {
	local v
	v=$(sed -n "s/^result .*[ ]$1=\([^ ]*\).*/\1/p" "$2" | head -n 1)
	echo "${v:-?}"
}

# calc EXPR [FORMAT]: awk arithmetic for the table (default two decimals); "?" when an input is
# missing or the arithmetic fails (a division by a zero count).
calc() {
	case "$1" in
	*'?'*) echo "?" ;;
	*) awk "BEGIN { printf \"${2:-%.2f}\", $1 }" 2>/dev/null || echo "?" ;;
	esac
}

# time_left: seconds a run may take, what is left of the budget but at most TIMEOUT.
time_left() {
	local left=$(( BUDGET - SECONDS ))
	[ $left -lt "$TIMEOUT" ] || left=$TIMEOUT
	echo "$left"
}

# loadgen NAME ARGS...: one pinned loadgen run; its result in $T/NAME.out, its stderr in $T/NAME.err.
# A failed run is recorded, not fatal: the table says what went wrong and the rest still runs.
FAILURES=()
loadgen() {
	local name=$1 rc=0 left; shift
	server_alive || die "the server is gone before '$name'"
	left=$(time_left)
	if [ "$left" -lt 5 ]; then
		FAILURES+=("$name: not run, the ${BUDGET} s budget is spent")
		: >"$T/$name.out"
		return 0
	fi
	echo "bench: $name ..." >&2
	"${LOAD_PIN[@]}" "$LOADGEN" --port "$PORT" --certdir "$T/certs" --ids "$T/ids" \
		--server-pid "$SERVER_PID" --timeout "$left" "$@" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
	sed 's/^/  /' "$T/$name.err" >&2
	if [ $rc -ne 0 ]; then
		FAILURES+=("$name: loadgen exit $rc: $(grep -m 3 '^loadgen:' "$T/$name.err" | tr '\n' ' ')")
	fi
	server_alive || die "the server died during '$name'"
	return 0
}

# --- set-up: a data directory, devices, the server ---------------------------------------------
DEVICES=$IDLE
[ "$PUBLISHERS" -gt "$DEVICES" ] && DEVICES=$PUBLISHERS
[ "$CONCURRENCY" -gt "$DEVICES" ] && DEVICES=$CONCURRENCY
"$HEARTH" init --data "$T/data" >/dev/null 2>"$T/init.err" ||
	{ cat "$T/init.err" >&2; die "hearth init failed"; }
# Publishes go through minimization and the group commit, as a real heater's would.
"$HEARTH" model set --data "$T/data" --model bench --policy "$ROOT/schema/policies/smart-heater.json" \
	>/dev/null 2>"$T/init.err" || { cat "$T/init.err" >&2; die "hearth model set failed"; }
echo "bench: creating $DEVICES devices ..." >&2
t0=$(date +%s.%N)
for i in $(seq -w 1 "$DEVICES"); do
	id=bench-$i
	"$HEARTH" device add --data "$T/data" --id "$id" --model bench --genkey --out "$T/certs" \
		>/dev/null 2>"$T/add.err" || { cat "$T/add.err" >&2; die "device add $id failed"; }
	echo "$id" >>"$T/ids"
done
t1=$(date +%s.%N)
ADD_MS=$(calc "($t1 - $t0) * 1000 / $DEVICES" %.1f)

# Anything else busy on this machine makes the numbers meaningless: measure it for a second first.
read -r b0 t0 < <(cpu_jiffies)
sleep 1
read -r b1 t1 < <(cpu_jiffies)
BUSY_BEFORE=$(calc "100 * ($b1 - $b0) / ($t1 - $t0)" %.0f)

# shellcheck disable=SC2086 # BENCH_SERVE_ARGS is a list of options
"${SERVER_PIN[@]}" "$HEARTH" serve --data "$T/data" --mqtt 127.0.0.1:0 --api 127.0.0.1:0 ${BENCH_SERVE_ARGS:-} \
	2>"$T/serve.log" &
SERVER_PID=$!
wait_until 10 grep -q 'MQTT endpoint listening on' "$T/serve.log" || die "the server did not start listening"
PORT=$(sed -n 's/.*MQTT endpoint listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/serve.log" | head -n 1)
[ -n "$PORT" ] || die "no port in the server log"
# taskset execs the server, so the PID is hearth's own; checked, as every number below depends on it.
[ "$(readlink "/proc/$SERVER_PID/exe")" = "$(readlink -f "$HEARTH")" ] || die "PID $SERVER_PID is not hearth"

# --- the runs ------------------------------------------------------------------------------------
loadgen full --handshakes "$HANDSHAKES" --concurrency "$CONCURRENCY"
loadgen resumed --resumed "$RESUMED" --concurrency "$CONCURRENCY"

# Idle: memory before; with half the connections up and with all of them, while held (the loadgen
# creates $T/ready at each point and waits for us to remove it at the first); after they closed.
# The second half's cost is the one to trust: the first half partly reuses heap freed by the runs
# before, which glibc keeps.
RSS0=$(smaps_kib "$SERVER_PID" Rss) PSS0=$(smaps_kib "$SERVER_PID" Pss) FDS0=$(fd_count "$SERVER_PID")
HALF=$(( IDLE / 2 ))
RSS1="?" PSS1="?" RSSH="?" PSSH="?" RSS2="?"
: >"$T/idle.out"
run_idle() {
	local left rc=0
	left=$(time_left)
	if [ "$left" -le $(( HOLD + 5 )) ]; then
		FAILURES+=("idle: not run, the ${BUDGET} s budget is spent")
		return 0
	fi
	echo "bench: idle ..." >&2
	rm -f "$T/ready"
	"${LOAD_PIN[@]}" "$LOADGEN" --port "$PORT" --certdir "$T/certs" --ids "$T/ids" \
		--server-pid "$SERVER_PID" --timeout "$left" --idle "$IDLE" --hold "$HOLD" \
		--concurrency "$CONCURRENCY" --checkpoint "$HALF" --ready-file "$T/ready" \
		>"$T/idle.out" 2>"$T/idle.err" &
	LG_PID=$!
	if wait_until "$left" ready_or_gone && [ -e "$T/ready" ]; then
		RSSH=$(smaps_kib "$SERVER_PID" Rss) PSSH=$(smaps_kib "$SERVER_PID" Pss)
		rm -f "$T/ready"
		if wait_until "$left" ready_or_gone && [ -e "$T/ready" ]; then
			RSS1=$(smaps_kib "$SERVER_PID" Rss) PSS1=$(smaps_kib "$SERVER_PID" Pss)
		fi
	fi
	wait "$LG_PID" || rc=$?
	LG_PID=""
	sed 's/^/  /' "$T/idle.err" >&2
	[ $rc -eq 0 ] || FAILURES+=("idle: loadgen exit $rc: $(grep -m 3 '^loadgen:' "$T/idle.err" | tr '\n' ' ')")
	server_alive || die "the server died during 'idle'"
	# Closed when the server holds no more descriptors than before; memory is read after that.
	wait_until 10 fds_back ||
		FAILURES+=("idle: server holds $(( $(fd_count "$SERVER_PID") - FDS0 )) more descriptors 10 s after the close")
	RSS2=$(smaps_kib "$SERVER_PID" Rss)
}
run_idle

loadgen publish --publish --clients "$PUBLISHERS" --messages "$MESSAGES" --window "$WINDOW" \
	--concurrency "$CONCURRENCY"
if [ "$SUSTAINED" -gt 0 ]; then
	loadgen sustained --publish --clients "$PUBLISHERS" --messages "$SUSTAINED" --window "$WINDOW" \
		--concurrency "$CONCURRENCY"
fi

# REST: an authenticated GET of one device with wrk (HTTPS, keep-alive), with the MQTT endpoint
# quiet, then while publishers load it (a second loadgen run in the background, sized to outlast
# wrk at the rates seen here).
REST_S=${BENCH_REST_SECONDS:-5}
: >"$T/rest-quiet.out"; : >"$T/rest-loaded.out"; : >"$T/rest-load.out"
if command -v wrk >/dev/null 2>&1 && [ "$(time_left)" -gt $(( 2 * REST_S + 20 )) ]; then
	API_PORT=$(sed -n 's/.*REST API listening on https:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/serve.log" | head -n 1)
	RTOKEN=$("$HEARTH" token add --data "$T/data" --name bench --scope read | tail -n 1)
	RURL="https://127.0.0.1:$API_PORT/api/v1/devices/$(head -n 1 "$T/ids")"
	rest_run() {
		"${LOAD_PIN[@]}" wrk -t1 -c8 -d"${REST_S}s" --latency -H "Authorization: Bearer $RTOKEN" "$RURL" \
			>"$1" 2>&1 || FAILURES+=("rest: wrk failed: $(tail -n 1 "$1")")
	}
	echo "bench: rest ..." >&2
	rest_run "$T/rest-quiet.out"
	"${LOAD_PIN[@]}" "$LOADGEN" --port "$PORT" --certdir "$T/certs" --ids "$T/ids" \
		--server-pid "$SERVER_PID" --timeout "$(time_left)" --publish --clients "$PUBLISHERS" \
		--messages "$(( (REST_S + 2) * 300 ))" --window "$WINDOW" \
		--concurrency "$CONCURRENCY" >"$T/rest-load.out" 2>"$T/rest-load.err" &
	LG_PID=$!
	sleep 1
	rest_run "$T/rest-loaded.out"
	wait "$LG_PID" || FAILURES+=("rest: the background publishers' loadgen failed: $(grep -m 2 '^loadgen:' "$T/rest-load.err" | tr '\n' ' ')")
	LG_PID=""
	server_alive || die "the server died during 'rest'"
else
	FAILURES+=("rest: not run (wrk is not installed, or the budget is spent)")
fi

# Stop it now, by PID, so its shutdown line (with its own counters) is in the log.
kill "$SERVER_PID"
wait_until 10 server_stopped || die "the server did not stop on SIGTERM"
wait "$SERVER_PID" || FAILURES+=("server: exit status $? after SIGTERM")
SERVER_PID=""

# --- the table -----------------------------------------------------------------------------------
F=$T/full.out R=$T/resumed.out I=$T/idle.out P=$T/publish.out S=$T/sustained.out
[ -e "$S" ] || : >"$S"
EST=$(field established "$I")
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
WARNINGS=$(grep -Ec ' hearth (warn|err|crit)' "$T/serve.log" || true)
# Which code was measured: the commit, and any uncommitted change to what goes into bin/hearth.
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git -C "$ROOT" status --porcelain -- server common ca ota schema Makefile 2>/dev/null |
	awk '{ print $NF }' | tr '\n' ' ')
[ -z "$DIRTY" ] || REV="$REV + uncommitted changes to ${DIRTY% }"
SERVER_MODE=$(sed -n 's/.* hearth info: \(TLS handshakes run on .*\)/\1/p' "$T/serve.log" | head -n 1)

row() { printf '%-44s %s\n' "$1" "$2"; }
# other_pct FILE: CPU that neither the server nor the loadgen used during a timed run, as a share
# of the machine: other processes, and the kernel's softirq network work for our own traffic.
other_pct() { calc "100 * $(field other_cpu_s "$1") / ($(field elapsed_s "$1") * $(nproc))" %.0f; }
{
	echo "hearth benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "machine: $(nproc) CPUs, ${CPU_MODEL:-unknown CPU}, Linux $(uname -r)"
	echo "hearth $REV; $(openssl version 2>/dev/null | cut -d' ' -f1-2) client;" \
		"TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256, P-256, client certificates"
	echo "server: ${BENCH_SERVE_ARGS:-default options}${SERVER_MODE:+, $SERVER_MODE}; pinning: $PINNING"
	echo
	row "metric" "value"
	row "--------------------------------------------" "-----------------------------------"
	row "device add --genkey" "$ADD_MS ms each ($DEVICES devices)"
	row "full handshakes (mTLS + CONNECT/CONNACK)" "$(field rate "$F")/s  ($(field ok "$F") ok, $(field failed "$F") failed, concurrency $CONCURRENCY)"
	row "  connect -> CONNACK p50 / p99" "$(field p50_ms "$F") / $(field p99_ms "$F") ms"
	row "  server CPU per full handshake" "$(calc "$(field server_cpu_s "$F") * 1000 / $(field ok "$F")") ms"
	row "resumed handshakes (ticket + CONNECT)" "$(field rate "$R")/s  ($(field ok "$R") ok, $(field failed "$R") failed, $(field primed "$R") devices)"
	row "  actually resumed" "$(calc "$(field reused_frac "$R") * 100" %.1f) %  ($(field reused "$R") of $(field ok "$R"))"
	row "  connect -> CONNACK p50 / p99" "$(field p50_ms "$R") / $(field p99_ms "$R") ms"
	row "  server CPU per resumed handshake" "$(calc "$(field server_cpu_s "$R") * 1000 / $(field ok "$R")") ms"
	row "idle connections held" "$EST of $IDLE for $(field held_s "$I") s  ($(field failed "$I") failed, $(field dropped "$I") dropped)"
	row "  server Rss before / held / after close" "$RSS0 / $RSS1 / $RSS2 KiB"
	row "  server Pss before / held" "$PSS0 / $PSS1 KiB"
	row "  server Rss / Pss with $HALF held" "$RSSH / $PSSH KiB"
	row "  per idle connection, 0 -> $EST (Rss / Pss)" "$(calc "($RSS1 - $RSS0) / $EST" %.1f) / $(calc "($PSS1 - $PSS0) / $EST" %.1f) KiB"
	row "  per idle connection, $HALF -> $EST (Rss / Pss)" "$(calc "($RSS1 - $RSSH) / ($EST - $HALF)" %.1f) / $(calc "($PSS1 - $PSSH) / ($EST - $HALF)" %.1f) KiB"
	row "QoS 1 publish -> PUBACK" "$(field rate "$P") msgs/s  ($PUBLISHERS x $MESSAGES, window $WINDOW, $(field acked "$P") acked, $(field failed "$P") failed)"
	row "  latency p50 / p99 / max" "$(field p50_ms "$P") / $(field p99_ms "$P") / $(field max_ms "$P") ms"
	row "  server CPU per message" "$(calc "$(field server_cpu_s "$P") * 1000000 / $(field acked "$P")" %.1f) us  (over $(field elapsed_s "$P") s)"
	if [ "$SUSTAINED" -gt 0 ]; then
		row "QoS 1 publish, longer run" "$(field rate "$S") msgs/s  ($PUBLISHERS x $SUSTAINED, window $WINDOW, $(field acked "$S") acked, $(field failed "$S") failed)"
		row "  latency p50 / p99 / max" "$(field p50_ms "$S") / $(field p99_ms "$S") / $(field max_ms "$S") ms"
		row "  server CPU per message" "$(calc "$(field server_cpu_s "$S") * 1000000 / $(field acked "$S")" %.1f) us  (over $(field elapsed_s "$S") s)"
	fi
	wrk_rate() { sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$1"; }
	wrk_pct() { awk -v p="$2%" '$1 == p { print $2 }' "$1"; }
	row "REST GET /api/v1/devices/{id} (wrk, 8 conns)" "$(wrk_rate "$T/rest-quiet.out")/s, p50 $(wrk_pct "$T/rest-quiet.out" 50) p99 $(wrk_pct "$T/rest-quiet.out" 99)  (MQTT quiet)"
	row "  while $PUBLISHERS publishers load MQTT" "$(wrk_rate "$T/rest-loaded.out")/s, p50 $(wrk_pct "$T/rest-loaded.out" 50) p99 $(wrk_pct "$T/rest-loaded.out" 99); MQTT meanwhile $(field rate "$T/rest-load.out") msgs/s"
	row "server log warnings/errors" "$WARNINGS"
	row "machine busy in the idle second before" "$BUSY_BEFORE % of $(nproc) CPUs (other processes)"
	row "CPU not server's or loadgen's, in runs" "full $(other_pct "$F"), resumed $(other_pct "$R"), publish $(other_pct "$S") % of $(nproc) CPUs"
	for v in "$BUSY_BEFORE" "$(other_pct "$F")" "$(other_pct "$R")" "$(other_pct "$S")"; do
		if [ "$v" != "?" ] && [ "$v" -gt 10 ]; then
			echo "WARNING: something else used the CPUs during the runs; these numbers are not clean"
			break
		fi
	done
	echo
	echo "server close reasons (from its log):"
	sed -n 's/.*: closed: //p' "$T/serve.log" | sort | uniq -c | sort -rn | sed 's/^/  /'
	grep -m 1 ' stopped: ' "$T/serve.log" | sed 's/.* stopped: /server at exit: /'
	if [ ${#FAILURES[@]} -gt 0 ]; then
		echo
		echo "FAILURES:"
		printf '  %s\n' "${FAILURES[@]}"
	fi
	echo
	echo "loadgen result lines:"
	cat "$F" "$R" "$I" "$P" "$S" | sed 's/^result /  /'
} >"$T/table.txt"

mkdir -p "$RESULTS"
cp "$T/table.txt" "$OUT"
cat "$T/table.txt"
echo "bench: written to ${OUT#"$ROOT"/}" >&2
[ ${#FAILURES[@]} -eq 0 ]
