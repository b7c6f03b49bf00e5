#!/usr/bin/env bash
# make bench: hearth's MQTT endpoint and Mosquitto 2.0 (Debian's) side by side, driven by the same
# load generator (bench/loadgen) with the same PKI and the same TLS: hearth's CA, its endpoint
# certificate and key serve both, and hearth's device certificates log in to both (TLS 1.2,
# ECDHE-ECDSA-AES128-GCM-SHA256, P-256, client certificates required). Prints one table, writes it
# to bench/results/latest.txt and a dated copy. Nothing here is a test; nothing is asserted.
#
# Each server runs twice, fresh each time: first full handshakes (the handshake storm), resumed
# handshakes, QoS 1 publishing closed loop and open loop at fixed rates (hearth: then REST); then
# idle connections (memory at two sizes) followed by the reconnect storms on that fleet.
#
# Sizes, from the environment (BENCH_QUICK=1 makes every default small, for checking the harness):
#   BENCH_HANDSHAKES (20000)   full handshakes, timed; memory is compared before and after
#   BENCH_HS_TICKETS (1)       0: those clients do not offer session tickets (as some devices do
#                              not), so a server with a session cache fills it
#   BENCH_CONCURRENCY (50)     connections being opened at once
#   BENCH_RESUMED (5000)       resumed handshakes, over BENCH_RESUMED_DEVICES (200) tickets
#   BENCH_IDLE_SMALL (1000), BENCH_IDLE (10000)   idle connections: memory at both sizes; the
#                              reconnect storm uses the BENCH_IDLE devices
#   BENCH_HOLD (5)             seconds the idle connections are held
#   BENCH_PUBLISHERS (200)     QoS 1 publishers; BENCH_WINDOW (10) messages in flight each
#   BENCH_PUBLISH_SECONDS (10) closed loop run (BENCH_MESSAGES or BENCH_SUSTAINED: a count per
#                              publisher instead)
#   BENCH_RATES ("5000 10000 20000"), BENCH_RATE_SECONDS (10)   open loop offered loads
#   BENCH_REST_SECONDS (5)     hearth's REST API with wrk (0: skip)
#   BENCH_SERVERS ("hearth mosquitto")
#   BENCH_SPREAD (1)           hearth's handshakes may use both cores (its handshake threads);
#                              0 pins it to one core like Mosquitto
#   BENCH_SERVE_ARGS           more options for `hearth serve` (e.g. "--handshake-threads 2")
#   BENCH_TIMEOUT (600)        at most, for each loadgen run
#   BENCH_BUDGET (2700)        seconds for everything: a stalling server cannot make it longer
#   BENCH_OUT                  where the table goes (quick runs: only printed and kept in /tmp)
#   BENCH_KEEP=1               keep the working directory (data, logs, loadgen output)
#   BENCH_CACHE=DIR            keep the new data directory and devices in DIR (private keys: 0700)
#                              and start from that copy next time (10,000 devices take minutes)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
	d_hs=300 d_res=500 d_resdev=50 d_small=100 d_idle=400 d_hold=1 d_pub=50 d_pubs=2
	d_rates="1000 2000" d_rates_s=2 d_rest=0 d_budget=240
else
	d_hs=20000 d_res=5000 d_resdev=200 d_small=1000 d_idle=10000 d_hold=5 d_pub=200 d_pubs=10
	d_rates="5000 10000 20000" d_rates_s=10 d_rest=5 d_budget=2700
fi
HANDSHAKES=${BENCH_HANDSHAKES:-$d_hs}
CONCURRENCY=${BENCH_CONCURRENCY:-50}
RESUMED=${BENCH_RESUMED:-$d_res}
RESUMED_DEVICES=${BENCH_RESUMED_DEVICES:-$d_resdev}
IDLE_SMALL=${BENCH_IDLE_SMALL:-$d_small}
IDLE=${BENCH_IDLE:-$d_idle}
HOLD=${BENCH_HOLD:-$d_hold}
PUBLISHERS=${BENCH_PUBLISHERS:-$d_pub}
WINDOW=${BENCH_WINDOW:-10}
PUBLISH_SECONDS=${BENCH_PUBLISH_SECONDS:-$d_pubs}
PER_PUBLISHER=${BENCH_SUSTAINED:-${BENCH_MESSAGES:-0}}
RATES=${BENCH_RATES:-$d_rates}
RATE_SECONDS=${BENCH_RATE_SECONDS:-$d_rates_s}
REST_S=${BENCH_REST_SECONDS:-$d_rest}
SERVERS=${BENCH_SERVERS:-hearth mosquitto}
SPREAD=${BENCH_SPREAD:-1}
HS_TICKETS=${BENCH_HS_TICKETS:-1}
TIMEOUT=${BENCH_TIMEOUT:-600}
BUDGET=${BENCH_BUDGET:-$d_budget}
RESULTS=$ROOT/bench/results

for v in HANDSHAKES CONCURRENCY RESUMED RESUMED_DEVICES IDLE_SMALL IDLE HOLD PUBLISHERS WINDOW \
	PUBLISH_SECONDS PER_PUBLISHER RATE_SECONDS REST_S TIMEOUT BUDGET; do
	case "${!v}" in '' | *[!0-9]*) echo "bench: $v must be a number, not '${!v}'" >&2; exit 2 ;; esac
done
for r in $RATES; do
	case "$r" in '' | *[!0-9]*) echo "bench: BENCH_RATES: '$r' is not a number" >&2; exit 2 ;; esac
done

if [ -z "${HEARTH:-}" ] || [ -z "${LOADGEN:-}" ] || [ -z "${P256:-}" ]; then
	make -C "$ROOT" --no-print-directory bin/hearth build/bench/loadgen build/bench/p256 >&2
	HEARTH=$ROOT/bin/hearth LOADGEN=$ROOT/build/bench/loadgen P256=$ROOT/build/bench/p256
fi
MOSQUITTO=${MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}
case " $SERVERS " in
*" mosquitto "*) [ -x "$MOSQUITTO" ] || { echo "bench: no mosquitto binary (apt-get install mosquitto)" >&2; exit 1; } ;;
esac

# Each server and the loadgen hold one descriptor per connection.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

T=$(mktemp -d /tmp/hearth-bench.XXXXXX)
SERVER_PID="" LG_PID=""
cleanup() {
	# By PID only: this script's own children, nothing else.
	if [ -n "$LG_PID" ] && kill "$LG_PID" 2>/dev/null; then wait "$LG_PID" 2>/dev/null || true; fi
	if [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; then
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
	echo "bench: $*" >&2
	if [ -n "${LOG:-}" ] && [ -s "$LOG" ]; then
		echo "bench: last lines of the server log ($LOG):" >&2
		tail -n 20 "$LOG" | sed 's/^/  | /' >&2
	fi
	exit 1
}

# Servers on CPU 0 and the loadgen on CPU 1, so neither steals the other's CPU. hearth's TLS
# handshakes run on threads of their own: in the handshake phases it may use both cores
# (BENCH_SPREAD), sharing CPU 1 with the loadgen; the table says so.
PIN=0 SERVER_PIN=() LOAD_PIN=()
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ] && taskset -c 1 true 2>/dev/null; then
	PIN=1 SERVER_PIN=(taskset -c 0) LOAD_PIN=(taskset -c 1)
fi
# pin_server CPUS: every thread of the running server onto CPUS.
pin_server() {
	[ "$PIN" = 1 ] || return 0
	taskset -a -p -c "$1" "$SERVER_PID" >/dev/null 2>&1 || echo "bench: could not pin the server to CPU $1" >&2
}
hearth_cpus() {
	if [ "$PIN" = 1 ] && [ "$SPREAD" = 1 ]; then echo "0,1"; else echo 0; fi
}

server_alive() { [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; }
server_stopped() { ! kill -0 "$SERVER_PID" 2>/dev/null; }
lg_gone() { ! kill -0 "$LG_PID" 2>/dev/null; }

# wait_until SECONDS CMD...: poll CMD every 0.1 s, bounded.
wait_until() {
	local i=0 limit=$(( $1 * 10 )); shift
	while [ $i -lt $limit ]; do "$@" && return 0; sleep 0.1; i=$((i + 1)); done
	return 1
}

# smaps_kib PID FIELD: Rss or Pss of PID in KiB, from /proc/PID/smaps_rollup ("?" if unreadable).
smaps_kib() {
	local v
	v=$(awk -v k="$2:" '$1 == k { print $2; exit }' "/proc/$1/smaps_rollup" 2>/dev/null || true)
	echo "${v:-?}"
}

# settle PID: wait (at most 5 s) until PID's PSS is the same in two looks half a second apart. A
# server that has just said it listens may still be starting threads and filling first caches;
# "where it started" is after that, for either server.
settle() {
	local prev cur i
	prev=$(smaps_kib "$1" Pss)
	for i in 1 2 3 4 5 6 7 8 9 10; do
		sleep 0.5
		cur=$(smaps_kib "$1" Pss)
		[ "$cur" = "$prev" ] && return 0
		prev=$cur
	done
	return 0
}
fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
# Sockets only: a server may open a file for good on first use (hearth's "-writers" intent file on
# its first write), which is no connection left open.
sock_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 -lname 'socket:*' 2>/dev/null | wc -l; }
# The server has closed every connection of a run once it holds no more sockets than before.
fds_back() { [ "$(sock_count "$SERVER_PID")" -le "$FDS0" ]; }
# cpu_jiffies: busy and total jiffies of all CPUs since boot, from /proc/stat.
cpu_jiffies() {
	awk '$1 == "cpu" { t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t; exit }' /proc/stat
}

# field KEY FILE: the value of KEY=VALUE on the first result line of FILE, or of the one whose
# kind= is $3 ("?" when missing).
field() {
	local v
	v=$(sed -n "/^result .*${3:+kind=$3}/{s/^result.*[ ]$1=\([^ ]*\).*/\1/p;q}" "$2" 2>/dev/null || true)
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

FAILURES=()

# loadgen NAME ARGS...: one pinned loadgen run against the current server; its result lines in
# $T/NAME.out, its stderr in $T/NAME.err. A failed run is recorded, not fatal: the table says what
# went wrong and the rest still runs.
loadgen() {
	local name=$1 rc=0 left; shift
	server_alive || die "the server is gone before '$name'"
	left=$(time_left)
	: >"$T/$name.out"
	if [ "$left" -lt 10 ]; then
		FAILURES+=("$name: not run, the ${BUDGET} s budget is spent")
		return 0
	fi
	echo "bench: $name ..." >&2
	"${LOAD_PIN[@]}" "$LOADGEN" --port "$PORT" --certdir "$T/certs" --ids "$T/ids" \
		--server-pid "$SERVER_PID" --timeout "$left" "$@" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
	sed 's/^/  /' "$T/$name.err" >&2
	if [ $rc -ne 0 ]; then
		FAILURES+=("$name: loadgen exit $rc: $({ grep -m 3 '^loadgen:' "$T/$name.err" || true; } | tr '\n' ' ')")
	fi
	server_alive || die "the server died during '$name'"
	# The next run starts once the server has closed this one's connections (the same devices
	# connecting again would otherwise take over sessions still open).
	wait_until 30 fds_back ||
		FAILURES+=("$name: the server still held $(( $(sock_count "$SERVER_PID") - FDS0 )) more sockets 30 s after it")
	return 0
}

# --- the PKI: hearth's CA and endpoint certificate, and devices -----------------------------------
DEVICES=$IDLE
for n in "$PUBLISHERS" "$CONCURRENCY" "$RESUMED_DEVICES" "$IDLE_SMALL"; do
	[ "$n" -gt "$DEVICES" ] && DEVICES=$n
done
CACHE=${BENCH_CACHE:-}
cache_usable() {
	[ -n "$CACHE" ] && [ -d "$CACHE/data" ] && [ -d "$CACHE/certs" ] && [ -s "$CACHE/ids" ] &&
		[ "$(wc -l <"$CACHE/ids")" -ge "$DEVICES" ] &&
		openssl x509 -checkend 172800 -noout -in "$CACHE/data/certs/endpoint.crt" >/dev/null 2>&1
}
if cache_usable; then
	# A copy of a data directory made by an earlier run right after its devices were added, and
	# never served since: the same starting point, minutes sooner.
	echo "bench: data directory and $DEVICES devices from $CACHE" >&2
	cp -a "$CACHE/data" "$CACHE/certs" "$T/"
	head -n "$DEVICES" "$CACHE/ids" >"$T/ids"
	ADD_MS=""
else
	"$HEARTH" init --data "$T/data" >/dev/null 2>"$T/init.err" ||
		{ cat "$T/init.err" >&2; die "hearth init failed"; }
	# Publishes go through minimization and the group commit, as a real heater's would.
	"$HEARTH" model set --data "$T/data" --model bench --policy "$ROOT/schema/policies/smart-heater.json" \
		>/dev/null 2>"$T/init.err" || { cat "$T/init.err" >&2; die "hearth model set failed"; }
	# `hearth device add` is the only way in (one process and one commit each); a few at once.
	ADD_JOBS=$(( $(nproc) * 2 ))
	echo "bench: creating $DEVICES devices, $ADD_JOBS at a time ..." >&2
	seq -f 'bench-%05g' 1 "$DEVICES" >"$T/ids"
	t0=$(date +%s.%N)
	BATCH=500
	for (( first = 1; first <= DEVICES; first += BATCH )); do
		last=$(( first + BATCH - 1 ))
		[ $last -le "$DEVICES" ] || last=$DEVICES
		[ $(( BUDGET - SECONDS )) -gt 60 ] || die "the ${BUDGET} s budget is spent creating devices"
		sed -n "${first},${last}p" "$T/ids" | xargs -P "$ADD_JOBS" -I{} "$HEARTH" device add --data "$T/data" \
			--id {} --model bench --genkey --out "$T/certs" >/dev/null 2>"$T/add.err" ||
			{ head -n 5 "$T/add.err" >&2; die "hearth device add failed"; }
		echo "bench:   $last of $DEVICES devices (${SECONDS} s)" >&2
	done
	t1=$(date +%s.%N)
	ADD_MS=$(calc "($t1 - $t0) * 1000 / $DEVICES" %.1f)
	[ "$(find "$T/certs" -name 'bench-*.crt' | wc -l)" -eq "$DEVICES" ] || die "not every device has a certificate"
	if [ -n "$CACHE" ]; then
		rm -rf "$CACHE/data" "$CACHE/certs" "$CACHE/ids"
		mkdir -p "$CACHE" && chmod 0700 "$CACHE"
		cp -a "$T/data" "$T/certs" "$T/ids" "$CACHE/"
		echo "bench: data directory and devices kept in $CACHE for the next run" >&2
	fi
fi

# Mosquitto reads the very same files. Started as root it drops to its own user before loading
# them, so it gets copies it may read (the same bytes, the same key).
MOSQ_PKI=$T/data/certs MOSQ_KEY=$T/data/keys/endpoint.key MOSQ_USER=""
if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
	chmod 0711 "$T"
	install -d -m 0700 -o mosquitto "$T/mosquitto"
	install -m 0600 -o mosquitto "$T/data/certs/ca.pem" "$T/data/certs/endpoint.crt" \
		"$T/data/keys/endpoint.key" "$T/mosquitto/"
	MOSQ_PKI=$T/mosquitto MOSQ_KEY=$T/mosquitto/endpoint.key MOSQ_USER=mosquitto
fi
cmp -s "$MOSQ_KEY" "$T/data/keys/endpoint.key" || die "Mosquitto's key is not hearth's endpoint key"

# --- the mbedTLS P-256 ceiling ---------------------------------------------------------------------
echo "bench: mbedTLS P-256 arithmetic ..." >&2
p256_run() {
	"$P256" --seconds "$([ "$QUICK" = 1 ] && echo 1 || echo 3)" --threads 2 >"$1" 2>"$T/p256.err" ||
		FAILURES+=("p256: $(head -n 2 "$T/p256.err" | tr '\n' ' ')")
}
p256_run "$T/p256.out"
grep -v '^result' "$T/p256.out" | sed 's/^/  /' >&2 || true

# Anything else busy on this machine makes the numbers meaningless: measure it for a second first.
read -r b0 j0 < <(cpu_jiffies)
sleep 1
read -r b1 j1 < <(cpu_jiffies)
BUSY_BEFORE=$(calc "100 * ($b1 - $b0) / ($j1 - $j0)" %.0f)

# --- the servers ------------------------------------------------------------------------------------
# All the load comes from 127.0.0.1, so per-address limits (where this hearth has them) would refuse
# most of it: they are off, as behind a load balancer (docs/deployment.md). Mosquitto has none.
HEARTH_ARGS=()
SERVE_HELP=$("$HEARTH" serve --help 2>&1 || true)
case "$SERVE_HELP" in
*--max-connections-per-address*) HEARTH_ARGS+=(--max-connections-per-address 0) ;;
esac
case "$SERVE_HELP" in
*--max-handshakes-per-address*) HEARTH_ARGS+=(--max-handshakes-per-address 0) ;;
esac
INSTANCE=0
start_hearth() {
	INSTANCE=$((INSTANCE + 1))
	LOG=$T/hearth-$INSTANCE.log
	# shellcheck disable=SC2086 # BENCH_SERVE_ARGS is a list of options
	"${SERVER_PIN[@]}" "$HEARTH" serve --data "$T/data" --mqtt 127.0.0.1:0 --api 127.0.0.1:0 \
		"${HEARTH_ARGS[@]}" ${BENCH_SERVE_ARGS:-} 2>"$LOG" &
	SERVER_PID=$!
	wait_until 15 grep -q 'MQTT endpoint listening on' "$LOG" || die "hearth did not start listening"
	PORT=$(sed -n 's/.*MQTT endpoint listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$LOG" | head -n 1)
	API_PORT=$(sed -n 's/.*REST API listening on https:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$LOG" | head -n 1)
	[ -n "$PORT" ] || die "no port in hearth's log"
	# taskset execs the server, so the PID is hearth's own; checked, as every number depends on it.
	[ "$(readlink "/proc/$SERVER_PID/exe")" = "$(readlink -f "$HEARTH")" ] || die "PID $SERVER_PID is not hearth"
}

port_listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
start_mosquitto() {
	local _
	INSTANCE=$((INSTANCE + 1))
	LOG=$T/mosquitto-$INSTANCE.log
	for _ in 1 2 3 4 5; do
		# A port below the ephemeral range that nothing listens on; should another process take it
		# first, Mosquitto exits and the next try picks another.
		PORT=$(( 20000 + (RANDOM % 12000) ))
		port_listening "$PORT" && continue
		{
			echo "# written by bench/run.sh: Mosquitto with hearth's PKI and hearth's TLS settings"
			[ -z "$MOSQ_USER" ] || echo "user $MOSQ_USER"
			echo "per_listener_settings false"
			echo "persistence false"
			echo "allow_anonymous false"
			echo "max_connections -1"
			echo "set_tcp_nodelay true"
			echo "log_dest stderr"
			echo "log_type error"
			echo "log_type warning"
			echo "connection_messages false"
			echo "listener $PORT 127.0.0.1"
			echo "cafile $MOSQ_PKI/ca.pem"
			echo "certfile $MOSQ_PKI/endpoint.crt"
			echo "keyfile $MOSQ_KEY"
			echo "require_certificate true"
			echo "use_identity_as_username true"
			echo "tls_version tlsv1.2"
			echo "ciphers ECDHE-ECDSA-AES128-GCM-SHA256"
		} >"$T/mosquitto.conf"
		"${SERVER_PIN[@]}" "$MOSQUITTO" -c "$T/mosquitto.conf" 2>"$LOG" &
		SERVER_PID=$!
		if wait_until 10 port_listening "$PORT" && server_alive; then
			[ "$(readlink "/proc/$SERVER_PID/exe")" = "$(readlink -f "$MOSQUITTO")" ] ||
				die "PID $SERVER_PID is not mosquitto"
			return 0
		fi
		if server_alive; then kill "$SERVER_PID"; fi
		wait "$SERVER_PID" 2>/dev/null || true
		SERVER_PID=""
	done
	die "Mosquitto did not start listening"
}

stop_server() {
	local name=$1
	kill "$SERVER_PID" 2>/dev/null || true
	wait_until 15 server_stopped || die "$name did not stop on SIGTERM"
	wait "$SERVER_PID" || FAILURES+=("$name: exit status $? after SIGTERM")
	SERVER_PID=""
}

# metric NAME: one value from hearth's /metrics (a read token; the endpoint certificate verified).
metric() {
	curl -sS --max-time 5 --cacert "$T/data/certs/ca.pem" -H "Authorization: Bearer $RTOKEN" \
		"https://127.0.0.1:$API_PORT/metrics" 2>/dev/null | awk -v k="$1" '$1 == k { print $2; exit }'
}
metrics_mark() {
	local f=$1
	{
		echo "messages $(metric hearth_telemetry_messages_total)"
		echo "values $(metric hearth_telemetry_values_kept_total)"
		echo "upserts $(metric hearth_telemetry_rows_written_total)"
		echo "commits $(metric hearth_store_commit_seconds_count)"
		echo "commit_s $(metric hearth_store_commit_seconds_sum)"
	} >"$f"
}
mval() { local v; v=$(awk -v k="$1" '$1 == k { print $2 }' "$2" 2>/dev/null); echo "${v:-?}"; }

# One server, first instance: handshakes, resumed, publishing.
run_traffic() {
	local s=$1 r open_args=()
	settle "$SERVER_PID"
	MEM0_RSS=$(smaps_kib "$SERVER_PID" Rss) MEM0_PSS=$(smaps_kib "$SERVER_PID" Pss)
	FDS0=$(sock_count "$SERVER_PID")
	echo "mem0 $MEM0_RSS $MEM0_PSS" >"$T/$s-mem.txt"
	[ "$s" = hearth ] && pin_server "$(hearth_cpus)"
	# This machine's speed drifts over minutes: the limit hearth is compared with is measured right
	# before and right after its handshakes too, with the server idle.
	[ "$s" = hearth ] && p256_run "$T/p256-before.out"
	if [ "$HS_TICKETS" = 0 ]; then
		loadgen "$s-full" --handshakes "$HANDSHAKES" --concurrency "$CONCURRENCY" --no-tickets
	else
		loadgen "$s-full" --handshakes "$HANDSHAKES" --concurrency "$CONCURRENCY"
	fi
	[ "$s" = hearth ] && p256_run "$T/p256-after.out"
	# hearth gives memory back once nothing has opened or closed for 2 s; both get the same wait.
	sleep 4
	echo "mem1 $(smaps_kib "$SERVER_PID" Rss) $(smaps_kib "$SERVER_PID" Pss)" >>"$T/$s-mem.txt"
	loadgen "$s-resumed" --resumed "$RESUMED" --devices "$RESUMED_DEVICES" --concurrency "$CONCURRENCY"
	[ "$s" = hearth ] && pin_server 0
	if [ "$PER_PUBLISHER" -gt 0 ]; then
		open_args=(--messages "$PER_PUBLISHER")
	else
		open_args=(--duration "$PUBLISH_SECONDS")
	fi
	[ "$s" = hearth ] && metrics_mark "$T/hearth-m0.txt"
	loadgen "$s-closed" --publish --clients "$PUBLISHERS" --window "$WINDOW" --concurrency "$CONCURRENCY" \
		--devices "$PUBLISHERS" "${open_args[@]}"
	if [ "$s" = hearth ]; then
		sleep 1.5   # /metrics is a snapshot taken every tick
		metrics_mark "$T/hearth-m1.txt"
	fi
	# One message in flight per device: a commit never holds two of one device's (nothing to merge).
	loadgen "$s-closed1" --publish --clients "$PUBLISHERS" --window 1 --concurrency "$CONCURRENCY" \
		--devices "$PUBLISHERS" "${open_args[@]}"
	for r in $RATES; do
		loadgen "$s-open-$r" --publish --clients "$PUBLISHERS" --window 64 --concurrency "$CONCURRENCY" \
			--devices "$PUBLISHERS" --duration "$RATE_SECONDS" --rate "$r"
	done
	if [ "$s" = hearth ]; then
		ROWS=$(sqlite3 "file:$T/data/hearth.db?mode=ro" 'SELECT count(*) FROM telemetry' 2>/dev/null || echo "?")
		run_rest
	fi
}

# hearth's REST API with wrk: an authenticated GET of one device, with MQTT quiet, then while
# publishers load it.
run_rest() {
	: >"$T/rest-quiet.out"; : >"$T/rest-loaded.out"; : >"$T/rest-load.out"
	if [ "$REST_S" -eq 0 ]; then
		return 0
	fi
	if ! command -v wrk >/dev/null 2>&1 || [ "$(time_left)" -le $(( 2 * REST_S + 20 )) ]; then
		FAILURES+=("rest: not run (wrk is not installed, or the budget is spent)")
		return 0
	fi
	local url
	url="https://127.0.0.1:$API_PORT/api/v1/devices/$(head -n 1 "$T/ids")"
	rest_run() {
		"${LOAD_PIN[@]}" wrk -t1 -c8 -d"${REST_S}s" --latency -H "Authorization: Bearer $RTOKEN" "$url" \
			>"$1" 2>&1 || FAILURES+=("rest: wrk failed: $(tail -n 1 "$1")")
	}
	echo "bench: hearth-rest ..." >&2
	rest_run "$T/rest-quiet.out"
	"${LOAD_PIN[@]}" "$LOADGEN" --port "$PORT" --certdir "$T/certs" --ids "$T/ids" --devices "$PUBLISHERS" \
		--server-pid "$SERVER_PID" --timeout "$(time_left)" --publish --clients "$PUBLISHERS" \
		--duration "$(( REST_S + 2 ))" --window "$WINDOW" \
		--concurrency "$CONCURRENCY" >"$T/rest-load.out" 2>"$T/rest-load.err" &
	LG_PID=$!
	sleep 1
	rest_run "$T/rest-loaded.out"
	wait "$LG_PID" || FAILURES+=("rest: the background publishers' loadgen failed: $({ grep -m 2 '^loadgen:' "$T/rest-load.err" || true; } | tr '\n' ' ')")
	LG_PID=""
	server_alive || die "the server died during 'rest'"
}

# One server, second instance: idle connections at two sizes, then the reconnect storms on them.
# The loadgen pauses at each point (its ready file says which) until we have looked.
run_fleet() {
	local s=$1 name=$1-fleet left rc=0 label ck=() round_s
	FDS0=$(sock_count "$SERVER_PID")
	echo "idle0 $(smaps_kib "$SERVER_PID" Rss) $(smaps_kib "$SERVER_PID" Pss)" >>"$T/$s-mem.txt"
	[ "$s" = hearth ] && pin_server "$(hearth_cpus)"
	left=$(time_left)
	: >"$T/$name.out"
	if [ "$left" -le $(( HOLD + 30 )) ]; then
		FAILURES+=("$name: not run, the ${BUDGET} s budget is spent")
		return 0
	fi
	[ "$IDLE_SMALL" -lt "$IDLE" ] && ck=(--checkpoint "$IDLE_SMALL")
	round_s=$(( (left - HOLD) / 3 ))
	[ $round_s -le 300 ] || round_s=300
	echo "bench: $name ..." >&2
	rm -f "$T/ready"
	"${LOAD_PIN[@]}" "$LOADGEN" --port "$PORT" --certdir "$T/certs" --ids "$T/ids" --devices "$IDLE" \
		--server-pid "$SERVER_PID" --timeout "$left" --storm "$IDLE" --hold "$HOLD" \
		--concurrency "$CONCURRENCY" "${ck[@]}" --ready-file "$T/ready" --reconnect tickets,full \
		--round-timeout "$round_s" >"$T/$name.out" 2>"$T/$name.err" &
	LG_PID=$!
	# Bounded by the loadgen's own --timeout: it exits (and we stop waiting) by then.
	# shellcheck disable=SC2016 # expanded by eval, on each poll
	while wait_until "$left" eval '[ -e "$T/ready" ] || lg_gone' && [ -e "$T/ready" ]; do
		label=$(cat "$T/ready" 2>/dev/null || true)
		case "$label" in
		checkpoint) echo "idle_small $(smaps_kib "$SERVER_PID" Rss) $(smaps_kib "$SERVER_PID" Pss)" >>"$T/$s-mem.txt" ;;
		connected) echo "idle_all $(smaps_kib "$SERVER_PID" Rss) $(smaps_kib "$SERVER_PID" Pss) $(fd_count "$SERVER_PID")" >>"$T/$s-mem.txt" ;;
		dropped)
			# Reconnecting starts once the server has noticed every reset.
			wait_until 60 fds_back || FAILURES+=("$name: the server still held $(( $(sock_count "$SERVER_PID") - FDS0 )) more sockets 60 s after the resets")
			;;
		esac
		rm -f "$T/ready"
	done
	wait "$LG_PID" || rc=$?
	LG_PID=""
	sed 's/^/  /' "$T/$name.err" >&2
	[ $rc -eq 0 ] || FAILURES+=("$name: loadgen exit $rc: $({ grep -m 3 '^loadgen:' "$T/$name.err" || true; } | tr '\n' ' ')")
	server_alive || die "the server died during '$name'"
}

RTOKEN=""
for s in $SERVERS; do
	case "$s" in
	hearth)
		RTOKEN=$("$HEARTH" token add --data "$T/data" --name bench --scope read 2>/dev/null | tail -n 1)
		start_hearth
		run_traffic hearth
		stop_server hearth
		start_hearth
		run_fleet hearth
		stop_server hearth
		;;
	mosquitto)
		start_mosquitto
		run_traffic mosquitto
		stop_server mosquitto
		start_mosquitto
		run_fleet mosquitto
		stop_server mosquitto
		;;
	*) die "BENCH_SERVERS: unknown server '$s'" ;;
	esac
done
LOG=""

# --- the table ---------------------------------------------------------------------------------------
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p;T;q' /proc/cpuinfo)
MEM_GIB=$(awk '$1 == "MemTotal:" { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
# Which code was measured: the commit of the tree the hearth binary was built in, and any
# uncommitted change there to what goes into it.
SRC=$(cd "$(dirname "$(readlink -f "$HEARTH")")/.." && pwd)
REV=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo "unknown ($HEARTH)")
DIRTY=$({ git -C "$SRC" status --porcelain -- server common ca ota schema Makefile 2>/dev/null || true; } |
	awk '{ print $NF }' | tr '\n' ' ')
if [ -n "$DIRTY" ]; then
	read -r -a dirty_files <<<"$DIRTY"
	if [ ${#dirty_files[@]} -le 4 ]; then
		REV="$REV + uncommitted changes to ${DIRTY% }"
	else
		REV="$REV + uncommitted changes to ${#dirty_files[@]} files (${dirty_files[*]:0:3} ...)"
	fi
fi
HS_THREADS=$(sed -n 's/.* hearth info: TLS handshakes run on \(.*\)/\1/p;T;q' "$T"/hearth-1.log 2>/dev/null || true)
# (mosquitto -h exits with 3)
MOSQ_VERSION=$({ "$MOSQUITTO" -h 2>/dev/null || true; } | sed -n 's/^mosquitto version \([^ ]*\).*/\1/p' | head -n 1)
MOSQ_SSL=$({ ldd "$MOSQUITTO" 2>/dev/null || true; } | sed -n 's/.*\(libssl\.so\.[0-9]*\).*/\1/p;T;q')
MBEDTLS=$(field mbedtls "$T/p256.out")
WARNINGS=$(cat "$T"/hearth-*.log 2>/dev/null | grep -Ec ' hearth (warn|err|crit)' || true)

H() { echo "$T/hearth-$1.out"; }
M() { echo "$T/mosquitto-$1.out"; }
# mem KEY COLUMN SERVER: a memory reading (2 = Rss, 3 = Pss, KiB).
mem() { local v; v=$(awk -v k="$1" -v c="$2" '$1 == k { print $c }' "$T/$3-mem.txt" 2>/dev/null); echo "${v:-?}"; }
ratio() { calc "$1 / $2" "%.2f"; }
row() { printf '%-46s %-28s %-28s %s\n' "$1" "$2" "$3" "$4"; }
# lat KEY FILE: a latency for the table, two decimals.
lat() { calc "$(field "$1" "$2")" %.2f; }
# lats FILE KEYS...: several, joined with " / ".
lats() { local f=$1 out="" k; shift; for k in "$@"; do out="$out${out:+ / }$(lat "$k" "$f")"; done; echo "$out"; }
# busy FILE: the loadgen's CPU over the run's wall time, as a share of its one core.
busy() { calc "100 * $(field client_cpu_s "$1") / $(field elapsed_s "$1")" %.0f; }
bound() {
	local b
	b=$(busy "$1")
	if [ "$b" != "?" ] && [ "$b" -ge 90 ]; then echo " loadgen-bound"; fi
}
other_pct() { calc "100 * $(field other_cpu_s "$1" "${2:-}") / ($(field elapsed_s "$1" "${2:-}") * $(nproc))" %.0f; }
# back FILE KIND: when the last device of a storm was back, or how many were by the round's end.
back() {
	local v
	v=$(field all_back_s "$1" "$2")
	if [ "$v" = "?" ] && [ "$(field back "$1" "$2")" != "?" ]; then
		v="not all: $(field back "$1" "$2") in $(calc "$(field elapsed_s "$1" "$2")" %.0f) s"
	fi
	echo "$v"
}
pct_change() { calc "100 * ($2 - $1) / $1" "%+.0f"; }

hs_rate_h=$(field rate "$(H full)") hs_rate_m=$(field rate "$(M full)")
hs_cpu_h=$(calc "$(field server_cpu_s "$(H full)") * 1000 / $(field ok "$(H full)")" %.2f)
hs_cpu_m=$(calc "$(field server_cpu_s "$(M full)") * 1000 / $(field ok "$(M full)")" %.2f)
res_cpu_h=$(calc "$(field server_cpu_s "$(H resumed)") * 1000 / $(field ok "$(H resumed)")" %.3f)
res_cpu_m=$(calc "$(field server_cpu_s "$(M resumed)") * 1000 / $(field ok "$(M resumed)")" %.3f)
# The limit next to hearth's handshakes: the mean of the runs before and after them (the one at the
# start when those are missing).
lim_at() { calc "($(field "$1" "$T/p256-before.out") + $(field "$1" "$T/p256-after.out")) / 2" %.1f; }
lim1=$(lim_at threads1) lim2=$(lim_at threadsn) lim_note=""
if [ "$lim1" = "?" ] || [ "$lim2" = "?" ]; then
	lim1=$(field threads1 "$T/p256.out") lim2=$(field threadsn "$T/p256.out")
else
	lim_note="before $(field threadsn "$T/p256-before.out"), after $(field threadsn "$T/p256-after.out"), start $(field threadsn "$T/p256.out")"
fi
# Memory per idle connection: PSS growth over the connections that came up (all or the first
# IDLE_SMALL); and the server's PSS fresh and after the handshake storm.
declare -A SMALL ALL MARG HS0 HS1 HSPCT
for s in hearth mosquitto; do
	e=$(field established "$T/$s-fleet.out")
	i0=$(mem idle0 3 $s) is=$(mem idle_small 3 $s) ia=$(mem idle_all 3 $s)
	SMALL[$s]=$(calc "($is - $i0) / $IDLE_SMALL" %.1f)
	ALL[$s]=$(calc "($ia - $i0) / $e" %.1f)
	MARG[$s]=$(calc "($ia - $is) / ($e - $IDLE_SMALL)" %.1f)
	HS0[$s]=$(calc "$(mem mem0 3 $s) / 1024" %.1f)
	HS1[$s]=$(calc "$(mem mem1 3 $s) / 1024" %.1f)
	HSPCT[$s]=$(pct_change "$(mem mem0 3 $s)" "$(mem mem1 3 $s)")
done
m0=$T/hearth-m0.txt m1=$T/hearth-m1.txt
closed_s=$(field elapsed_s "$(H closed)")
stored=$(calc "($(mval messages "$m1") - $(mval messages "$m0")) / $closed_s" %.0f)
values=$(calc "($(mval values "$m1") - $(mval values "$m0")) / $closed_s" %.0f)
upserts=$(calc "($(mval upserts "$m1") - $(mval upserts "$m0")) / $closed_s" %.0f)
commits=$(calc "($(mval commits "$m1") - $(mval commits "$m0")) / $closed_s" %.0f)
per_commit=$(calc "($(mval messages "$m1") - $(mval messages "$m0")) / ($(mval commits "$m1") - $(mval commits "$m0"))" %.1f)
commit_ms=$(calc "1000 * ($(mval commit_s "$m1") - $(mval commit_s "$m0")) / ($(mval commits "$m1") - $(mval commits "$m0"))" %.2f)
# The open loop rate item 5 quotes: 10000 msgs/s, or the nearest one run.
R10=""
for r in $RATES; do
	if [ -z "$R10" ] || [ $(( r > 10000 ? r - 10000 : 10000 - r )) -lt $(( R10 > 10000 ? R10 - 10000 : 10000 - R10 )) ]; then
		R10=$r
	fi
done
QUICK_NOTE=""
[ "$QUICK" != 1 ] || QUICK_NOTE=" (BENCH_QUICK: small sizes, a check of the harness, not a result)"

{
	echo "hearth vs Mosquitto, $(date -u '+%Y-%m-%d %H:%M:%S UTC')$QUICK_NOTE"
	echo "machine: ${CPU_MODEL:-unknown CPU}, $(nproc) cores, ${MEM_GIB} GiB, Linux $(uname -r)"
	echo "hearth $REV (mbedTLS $MBEDTLS; handshakes on ${HS_THREADS:-?}${BENCH_SERVE_ARGS:+; serve $BENCH_SERVE_ARGS});" \
		"Mosquitto ${MOSQ_VERSION:-?} (${MOSQ_SSL:-OpenSSL}); loadgen $(openssl version 2>/dev/null | cut -d' ' -f1-2)"
	echo "both: one PKI (hearth's CA; its endpoint certificate and key), P-256 everywhere, client certificates"
	echo "      required, TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256; Mosquitto: persistence off, no limits"
	[ ${#HEARTH_ARGS[@]} -eq 0 ] || echo "      hearth: ${HEARTH_ARGS[*]} (all the load comes from one address)"
	if [ "$PIN" = 1 ]; then
		echo "pinning: Mosquitto on CPU 0 (one thread); loadgen on CPU 1; hearth on CPU 0, except its handshake"
		echo "         phases (1, 2, 3, 6) on CPU $(hearth_cpus) (its handshake threads; sharing CPU 1 with the loadgen)"
	else
		echo "pinning: none (taskset missing or one core)"
	fi
	echo "ratio = hearth / Mosquitto, from this run; lower is better for CPU, memory, latency, time"
	echo
	row "metric" "hearth" "Mosquitto" "ratio"
	row "----------------------------------------------" "----------------------------" "----------------------------" "-----"
	echo "1. full mTLS handshakes (+ CONNECT/CONNACK), $HANDSHAKES at concurrency $CONCURRENCY, clients $([ "$HS_TICKETS" = 0 ] && echo "without" || echo "offering") session tickets"
	row "   handshakes/s" "$hs_rate_h$(bound "$(H full)")" "$hs_rate_m$(bound "$(M full)")" "$(ratio "$hs_rate_h" "$hs_rate_m")"
	row "   server CPU per handshake (ms)" "$hs_cpu_h" "$hs_cpu_m" "$(ratio "$hs_cpu_h" "$hs_cpu_m")"
	row "   connect -> CONNACK p50 / p99 (ms)" "$(lats "$(H full)" p50_ms p99_ms)" "$(lats "$(M full)" p50_ms p99_ms)" ""
	row "   failed" "$(field failed "$(H full)")" "$(field failed "$(M full)")" ""
	row "   loadgen CPU per handshake (ms), busy %" "$(calc "$(field client_cpu_s "$(H full)") * 1000 / $(field ok "$(H full)")" %.2f), $(busy "$(H full)") %" "$(calc "$(field client_cpu_s "$(M full)") * 1000 / $(field ok "$(M full)")" %.2f), $(busy "$(M full)") %" ""
	row "   mbedTLS P-256 limit (EC work only), /s" "1 thread $lim1, 2 threads $lim2" "" ""
	[ -z "$lim_note" ] || row "     2 threads: around hearth's run; at start" "$lim_note" "" ""
	row "   hearth as a share of that limit" "$(calc "100 * $hs_rate_h / $lim2" %.0f) % of 2 threads, $(calc "100 * $hs_rate_h / $lim1" %.0f) % of 1" "" ""
	# The loadgen runs on CPU 1 too; what it uses there is not the server's to use.
	row "   ... of it on the CPU the loadgen leaves" "$(calc "100 * $hs_rate_h / ($lim2 * (200 - $(busy "$(H full)")) / 200)" %.0f) %" "" ""
	echo "2. resumed handshakes (session tickets), $RESUMED over $RESUMED_DEVICES tickets"
	row "   handshakes/s" "$(field rate "$(H resumed)")$(bound "$(H resumed)")" "$(field rate "$(M resumed)")$(bound "$(M resumed)")" "$(ratio "$(field rate "$(H resumed)")" "$(field rate "$(M resumed)")")"
	row "   server CPU per resumed handshake (ms)" "$res_cpu_h" "$res_cpu_m" "$(ratio "$res_cpu_h" "$res_cpu_m")"
	row "   actually resumed" "$(calc "100 * $(field reused_frac "$(H resumed)")" %.1f) %" "$(calc "100 * $(field reused_frac "$(M resumed)")" %.1f) %" ""
	row "   connect -> CONNACK p50 / p99 (ms)" "$(lats "$(H resumed)" p50_ms p99_ms)" "$(lats "$(M resumed)" p50_ms p99_ms)" ""
	echo "3. memory (PSS, /proc/PID/smaps_rollup)"
	row "   per idle connection, 0 -> $IDLE_SMALL (KiB)" "${SMALL[hearth]}" "${SMALL[mosquitto]}" "$(ratio "${SMALL[hearth]}" "${SMALL[mosquitto]}")"
	row "   per idle connection, 0 -> $IDLE (KiB)" "${ALL[hearth]}" "${ALL[mosquitto]}" "$(ratio "${ALL[hearth]}" "${ALL[mosquitto]}")"
	row "   per idle connection, $IDLE_SMALL -> $IDLE (KiB)" "${MARG[hearth]}" "${MARG[mosquitto]}" "$(ratio "${MARG[hearth]}" "${MARG[mosquitto]}")"
	row "   idle connections established" "$(field established "$(H fleet)") of $IDLE" "$(field established "$(M fleet)") of $IDLE" ""
	row "   fresh -> after $HANDSHAKES handshakes (MiB)" "${HS0[hearth]} -> ${HS1[hearth]} (${HSPCT[hearth]} %)" "${HS0[mosquitto]} -> ${HS1[mosquitto]} (${HSPCT[mosquitto]} %)" "$(ratio "${HS1[hearth]}" "${HS1[mosquitto]}")"
	echo "4. QoS 1 publish -> PUBACK, $PUBLISHERS publishers (hearth: minimized and durably stored first)"
	row "   closed loop, window $WINDOW: msgs/s" "$(field rate "$(H closed)")$(bound "$(H closed)")" "$(field rate "$(M closed)")$(bound "$(M closed)")" "$(ratio "$(field rate "$(H closed)")" "$(field rate "$(M closed)")")"
	row "   server CPU per message (us)" "$(calc "$(field server_cpu_s "$(H closed)") * 1e6 / $(field acked "$(H closed)")" %.1f)" "$(calc "$(field server_cpu_s "$(M closed)") * 1e6 / $(field acked "$(M closed)")" %.1f)" "$(ratio "$(field server_cpu_s "$(H closed)") / $(field acked "$(H closed)")" "($(field server_cpu_s "$(M closed)") / $(field acked "$(M closed)"))")"
	row "   latency p50 / p99 (ms)" "$(lats "$(H closed)" p50_ms p99_ms)" "$(lats "$(M closed)" p50_ms p99_ms)" ""
	row "   closed loop, window 1: msgs/s" "$(field rate "$(H closed1)")$(bound "$(H closed1)")" "$(field rate "$(M closed1)")$(bound "$(M closed1)")" "$(ratio "$(field rate "$(H closed1)")" "$(field rate "$(M closed1)")")"
	row "     server CPU per message (us)" "$(calc "$(field server_cpu_s "$(H closed1)") * 1e6 / $(field acked "$(H closed1)")" %.1f)" "$(calc "$(field server_cpu_s "$(M closed1)") * 1e6 / $(field acked "$(M closed1)")" %.1f)" "$(ratio "$(field server_cpu_s "$(H closed1)") / $(field acked "$(H closed1)")" "($(field server_cpu_s "$(M closed1)") / $(field acked "$(M closed1)"))")"
	row "     latency p50 / p99 (ms)" "$(lats "$(H closed1)" p50_ms p99_ms)" "$(lats "$(M closed1)" p50_ms p99_ms)" ""
	for r in $RATES; do
		row "   open loop $r/s: achieved msgs/s" "$(field rate "$(H "open-$r")")" "$(field rate "$(M "open-$r")")" "$(ratio "$(field rate "$(H "open-$r")")" "$(field rate "$(M "open-$r")")")"
		row "     p50 / p99 / max (ms), from when due" "$(lats "$(H "open-$r")" p50_ms p99_ms max_ms)" "$(lats "$(M "open-$r")" p50_ms p99_ms max_ms)" "$(ratio "$(field p99_ms "$(H "open-$r")")" "$(field p99_ms "$(M "open-$r")")") (p99)"
		row "     server CPU per message (us)" "$(calc "$(field server_cpu_s "$(H "open-$r")") * 1e6 / $(field acked "$(H "open-$r")")" %.1f)" "$(calc "$(field server_cpu_s "$(M "open-$r")") * 1e6 / $(field acked "$(M "open-$r")")" %.1f)" "$(ratio "$(field server_cpu_s "$(H "open-$r")") / $(field acked "$(H "open-$r")")" "($(field server_cpu_s "$(M "open-$r")") / $(field acked "$(M "open-$r")"))")"
		row "     held back before sending, p99 (ms)" "$(lat lag_p99_ms "$(H "open-$r")")" "$(lat lag_p99_ms "$(M "open-$r")")" ""
	done
	echo "5. hearth only: durable storage (PUBACK after the group commit), during the closed loop run"
	row "   messages minimized and stored /s" "$stored" "" ""
	row "   values folded into stored rows /s" "$values" "" ""
	row "   store upserts /s (merged per row and commit)" "$upserts" "" ""
	row "   group commits /s, messages each, ms each" "$commits, $per_commit, $commit_ms" "" ""
	row "   telemetry rows in the store at the end" "${ROWS:-?}" "" ""
	row "   p99 PUBACK at $R10 msgs/s (open loop)" "$(lat p99_ms "$(H "open-$R10")") ms" "" ""
	echo "6. reconnect storm: $IDLE devices reset at once, all reconnecting at once (backoff 0.5..8 s)"
	for k in tickets full; do
		row "   $([ $k = tickets ] && echo "with tickets" || echo "without tickets"): all back (s)" "$(back "$(H fleet)" $k)" "$(back "$(M fleet)" $k)" "$(ratio "$(field all_back_s "$(H fleet)" $k)" "$(field all_back_s "$(M fleet)" $k)")"
		row "     back / attempts / failed attempts" "$(field back "$(H fleet)" $k) / $(field attempts "$(H fleet)" $k) / $(field failed_attempts "$(H fleet)" $k)" "$(field back "$(M fleet)" $k) / $(field attempts "$(M fleet)" $k) / $(field failed_attempts "$(M fleet)" $k)" ""
		row "     resumed / p50 / p99 back (s)" "$(field resumed "$(H fleet)" $k) / $(field p50_s "$(H fleet)" $k) / $(field p99_s "$(H fleet)" $k)" "$(field resumed "$(M fleet)" $k) / $(field p50_s "$(M fleet)" $k) / $(field p99_s "$(M fleet)" $k)" ""
		row "     server CPU (s), loadgen CPU (s)" "$(field server_cpu_s "$(H fleet)" $k), $(field client_cpu_s "$(H fleet)" $k)" "$(field server_cpu_s "$(M fleet)" $k), $(field client_cpu_s "$(M fleet)" $k)" ""
	done
	if [ "$REST_S" -gt 0 ] && [ -s "$T/rest-quiet.out" ]; then
		wrk_rate() { sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$1"; }
		wrk_pct() { awk -v p="$2%" '$1 == p { print $2 }' "$1"; }
		echo "hearth's REST API: GET /api/v1/devices/{id} (wrk, 8 connections, ${REST_S} s)"
		row "   MQTT quiet: requests/s, p50, p99" "$(wrk_rate "$T/rest-quiet.out"), $(wrk_pct "$T/rest-quiet.out" 50), $(wrk_pct "$T/rest-quiet.out" 99)" "" ""
		row "   $PUBLISHERS publishers at once" "$(wrk_rate "$T/rest-loaded.out"), $(wrk_pct "$T/rest-loaded.out" 50), $(wrk_pct "$T/rest-loaded.out" 99)" "(MQTT $(field rate "$T/rest-load.out") msgs/s)" ""
	fi
	echo
	if [ -n "$ADD_MS" ]; then
		echo "device add --genkey: $ADD_MS ms each ($DEVICES devices, $ADD_JOBS at a time)"
	else
		echo "devices: $DEVICES, from BENCH_CACHE"
	fi
	echo "hearth log warnings/errors: $WARNINGS"
	# What they said, without the time stamps: the same line from several runs is counted once.
	# (None at all is no failure: grep's status is not the pipeline's.)
	cat "$T"/hearth-*.log 2>/dev/null | { grep -E ' hearth (warn|err|crit)' || true; } | sed 's/^[^ ]* //' |
		sort | uniq -c | sort -rn | head -n 5 | cut -c1-160 | sed 's/^/  /'
	echo "machine busy in the idle second before: $BUSY_BEFORE % of $(nproc) CPUs"
	others=""
	worst=0
	for f in "$T"/hearth-*.out "$T"/mosquitto-*.out; do
		[ -s "$f" ] || continue
		for k in "" tickets full; do
			v=$(other_pct "$f" "$k")
			[ "$v" = "?" ] && continue
			[ "$v" -gt "$worst" ] && worst=$v && others="$(basename "$f" .out)${k:+ $k}"
			[ -n "$k" ] || break
		done
	done
	echo "CPU used by neither server nor loadgen during runs: at most $worst % of $(nproc) CPUs (${others:-none})"
	if [ "$BUSY_BEFORE" != "?" ] && { [ "$BUSY_BEFORE" -gt 10 ] || [ "$worst" -gt 10 ]; }; then
		echo "WARNING: something else used the CPUs during the runs; these numbers are not clean"
	fi
	if [ ${#FAILURES[@]} -gt 0 ]; then
		echo
		echo "FAILURES:"
		printf '  %s\n' "${FAILURES[@]}"
	fi
	echo
	echo "hearth close reasons (from its logs):"
	cat "$T"/hearth-*.log 2>/dev/null | sed -n 's/.*: closed: //p' | sort | uniq -c | sort -rn | head -n 8 | sed 's/^/  /'
	echo
	grep -h '^p256:\|^  \|^handshakes/s' "$T/p256.out" 2>/dev/null || true
	echo
	echo "loadgen result lines:"
	for f in "$T"/hearth-*.out "$T"/mosquitto-*.out; do
		[ -s "$f" ] || continue
		sed "s/^result /  $(basename "$f" .out): /" "$f"
	done
	for s in hearth mosquitto; do
		[ -s "$T/$s-mem.txt" ] && echo "  $s memory (KiB Rss Pss): $(tr '\n' ';' <"$T/$s-mem.txt")"
	done
} >"$T/table.txt"

cat "$T/table.txt"
if [ -n "${BENCH_OUT:-}" ]; then
	cp "$T/table.txt" "$BENCH_OUT"
	echo "bench: written to $BENCH_OUT" >&2
elif [ "$QUICK" = 1 ]; then
	# A harness check: its small numbers must not replace the committed results.
	cp "$T/table.txt" "${TMPDIR:-/tmp}/hearth-bench-quick.txt"
	echo "bench: quick run; table kept in ${TMPDIR:-/tmp}/hearth-bench-quick.txt, bench/results/ untouched" >&2
else
	SHORT=$(echo "$(nproc)c-${CPU_MODEL:-cpu}" | tr '[:upper:]' '[:lower:]' |
		sed 's/([^)]*)//g; s/processor\|cpu\|[0-9]*-core//g; s/[^a-z0-9]\{1,\}/-/g; s/-\{2,\}/-/g; s/-$//' | cut -c1-32)
	mkdir -p "$RESULTS"
	cp "$T/table.txt" "$RESULTS/latest.txt"
	cp "$T/table.txt" "$RESULTS/$(date -u +%Y-%m-%d)-${SHORT%-}.txt"
	echo "bench: written to bench/results/latest.txt and bench/results/$(date -u +%Y-%m-%d)-${SHORT%-}.txt" >&2
fi
[ ${#FAILURES[@]} -eq 0 ]
