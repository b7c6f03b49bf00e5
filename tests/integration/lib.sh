# Sourced by every black-box test. Gives a private scratch directory $T (removed on exit, with any
# process started through start_bg), and small assertion helpers that count into $RESULT_FILE.
set -u
: "${HEARTH:?HEARTH must name the hearth binary}"
T=$(mktemp -d /tmp/hearth-test.XXXXXX)
BG_PIDS=""
pass=0 fail=0

cleanup() {
	for p in $BG_PIDS; do kill "$p" 2>/dev/null; done
	for p in $BG_PIDS; do wait "$p" 2>/dev/null; done
	rm -rf "$T"
	echo "$pass $fail" > "${RESULT_FILE:-/dev/null}"
}
trap cleanup EXIT

ok()  { pass=$((pass + 1)); echo "  ok   $*"; }
nok() { fail=$((fail + 1)); echo "  FAIL $*"; sed 's/^/       | /' "$T/.out" 2>/dev/null | head -15; }

# A sanitizer report in a command's output fails the check, even where failure was expected.
sanitized() { grep -Eq 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:' "$T/.out"; }

# t DESC CMD...         CMD succeeds
t() {
	local d=$1; shift
	if "$@" >"$T/.out" 2>&1 && ! sanitized; then ok "$d"; else nok "$d"; fi
}
# t_fails DESC CMD...   CMD fails (non-zero exit), cleanly
t_fails() {
	local d=$1; shift
	if "$@" >"$T/.out" 2>&1; then nok "$d (it succeeded)"
	elif sanitized; then nok "$d (sanitizer report)"
	else ok "$d"; fi
}
# t_out DESC REGEX CMD... CMD's output (stdout+stderr) matches the extended regex; exit status ignored
t_out() {
	local d=$1 re=$2; shift 2
	"$@" >"$T/.out" 2>&1
	if sanitized; then nok "$d (sanitizer report)"
	elif grep -Eq -- "$re" "$T/.out"; then ok "$d"
	else nok "$d (no /$re/)"; fi
}
# t_eq DESC EXPECTED ACTUAL
t_eq() { if [ "$2" = "$3" ]; then ok "$1"; else echo "expected [$2] got [$3]" >"$T/.out"; nok "$1"; fi; }

# mode_of FILE: octal permission bits
mode_of() { stat -c '%a' "$1"; }

# Replace the byte at OFFSET of FILE with a different value.
flip_byte() {
	local f=$1 off=$2 b
	b=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
	printf "$(printf '\\%03o' $(( (b ^ 0x55) & 255 )))" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}

# wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds, bounded. WAIT_SCALE (an integer,
# default 1) stretches every bound, for a slow hearth (make valgrind).
wait_for() {
	local limit=$(( $1 * 10 * ${WAIT_SCALE:-1} )) i=0; shift
	while [ $i -lt $limit ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; i=$((i + 1)); done
	return 1
}

# faketime_lib: the path of libfaketime (empty if it is not installed). Servers run under it with a
# stopped clock read from a file (FAKETIME_TIMESTAMP_FILE) that the test moves.
faketime_lib() {
	local f
	for f in /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1; do
		[ -e "$f" ] && { echo "$f"; return 0; }
	done
}

# start_bg CMD...: run CMD in the background; stopped by PID on exit. Sets BG_PID.
start_bg() { "$@" >"$T/bg.$$.log" 2>&1 & BG_PID=$!; BG_PIDS="$BG_PIDS $BG_PID"; }

# An EC P-256 CSR (PEM) at $1 with its key at $1.key; extra openssl req arguments follow.
make_csr() {
	local out=$1; shift
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=device \
		-keyout "$out.key" -out "$out" "$@" 2>/dev/null
}

# start_hearth DIR [serve options...]: run `hearth serve` with MQTT and the REST API on free
# loopback ports; sets PORT (MQTT), API_PORT, HPID and HLOG once both listen. Stopped by PID on exit
# like everything from start_bg.
start_hearth() {
	local dir=$1; shift
	HLOG=$T/serve.$((${HLOG_N:=0} + 1)).log; HLOG_N=$((HLOG_N + 1))
	"$HEARTH" serve --data "$dir" --mqtt 127.0.0.1:0 --api 127.0.0.1:0 "$@" >"$HLOG" 2>&1 &
	HPID=$!; BG_PIDS="$BG_PIDS $HPID"
	wait_for 20 grep -q 'MQTT endpoint listening on 127.0.0.1:' "$HLOG" || { echo "hearth did not start:"; cat "$HLOG"; return 1; }
	PORT=$(sed -n 's/.*MQTT endpoint listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$HLOG" | head -1)
	API_PORT=""
	if wait_for 5 grep -q 'REST API listening on' "$HLOG"; then
		API_PORT=$(sed -n 's/.*REST API listening on https*:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$HLOG" | head -1)
	fi
}

# api TOKEN METHOD PATH [CURL ARGS...]: one REST request with curl over HTTPS to the server started
# last, verifying it with the CA bundle of $D (TOKEN "" sends none). Prints the body, then a last
# line "HTTP <status>".
api() {
	local tok=$1 m=$2 path=$3; shift 3
	curl -sS --max-time 10 --cacert "$D/certs/ca.pem" ${tok:+-H "Authorization: Bearer $tok"} -X "$m" \
		-w '\nHTTP %{http_code}\n' "$@" "https://127.0.0.1:$API_PORT$path"
}

# new_token NAME SCOPE: an API token for the data directory $D (hearth token add prints it last).
new_token() { "$HEARTH" token add --data "$D" --name "$1" --scope "$2" | tail -1; }

# stop_hearth: SIGTERM and wait (bounded) for the server started last.
stop_hearth() {
	kill -TERM "$HPID" 2>/dev/null
	local i=0
	while kill -0 "$HPID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	wait "$HPID" 2>/dev/null
}

# raw ID STEP...: tests/integration/mqtt_raw.py as device ID (cert and key in $O).
raw() {
	local id=$1; shift
	python3 "$(dirname "${BASH_SOURCE[0]}")/mqtt_raw.py" --host 127.0.0.1 --port "$PORT" \
		--cafile "$O/ca.pem" --cert "$O/$id.crt" --key "$O/$id.key" --timeout "${RAW_TIMEOUT:-5}" "$@"
}

# loadgen_fleet PREFIX N: a data directory $D with the smart-heater model and devices PREFIX1..N
# (keys and certificates in $O), their ids in $T/ids, for bench/loadgen ($LOADGEN). 1 on failure.
loadgen_fleet() {
	local i
	[ -x "${LOADGEN:-}" ] || { nok "LOADGEN names the built bench/loadgen.c"; return 1; }
	"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; return 1; }
	"$HEARTH" model set --data "$D" --model heater --policy schema/policies/smart-heater.json >/dev/null 2>&1 ||
		nok "model set"
	: >"$T/ids"
	for i in $(seq 1 "$2"); do
		"$HEARTH" device add --data "$D" --id "$1$i" --model heater --genkey --out "$O" >/dev/null 2>&1 ||
			nok "add $1$i"
		echo "$1$i" >>"$T/ids"
	done
}

# mosq_pub ID ARGS... / mosq_sub ID ARGS...: the mosquitto clients as device ID.
mosq_pub() { local id=$1; shift; timeout 20 mosquitto_pub -h 127.0.0.1 -p "$PORT" --cafile "$O/ca.pem" --cert "$O/$id.crt" --key "$O/$id.key" "$@"; }
mosq_sub() { local id=$1; shift; timeout 20 mosquitto_sub -h 127.0.0.1 -p "$PORT" --cafile "$O/ca.pem" --cert "$O/$id.crt" --key "$O/$id.key" "$@"; }

# hex STR: the bytes of STR as hex, for mqtt_raw's send: steps.
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }

# connect_will ID TOPIC MSG: an mqtt_raw step sending a 3.1.1 CONNECT of client ID (keep-alive 60,
# no clean session) with a QoS 1 will MSG on TOPIC. The packet must stay under 128 bytes.
connect_will() {
	local len=$(( 10 + 6 + ${#1} + ${#2} + ${#3} ))
	printf 'send:10%02x00044d515454040c003c%04x%s%04x%s%04x%s' "$len" "${#1}" "$(hex "$1")" \
		"${#2}" "$(hex "$2")" "${#3}" "$(hex "$3")"
}

# t_raw DESC REGEX ID STEP...: mqtt_raw as device ID must hold every expect (exit 0) and print
# something matching REGEX.
t_raw() {
	local d=$1 re=$2; shift 2
	raw "$@" >"$T/.out" 2>&1; local rc=$?
	if [ $rc -ne 0 ]; then nok "$d (mqtt_raw exit $rc)"
	elif sanitized; then nok "$d (sanitizer report)"
	elif grep -Eq -- "$re" "$T/.out"; then ok "$d"
	else nok "$d (no /$re/)"; fi
}
