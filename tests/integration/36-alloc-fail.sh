# Allocation failure on client-driven paths closes that connection, not the server. hearth runs with
# tests/fault/allocfail.c preloaded ($ALLOCFAIL), whose malloc/calloc/realloc fail on command while
# real TLS clients (mosquitto_pub/_sub, mqtt_raw, curl) connect, subscribe and publish: first only
# big buffers (a client's oversized packet), then every few allocations on the event loop (packet
# buffers, sessions, subscriptions, telemetry JSON, the store), then on every thread (TLS contexts
# and handshakes, the REST API). After each the server runs, serves, and lost no acknowledged
# message. About 40 s.
. "$(dirname "$0")/lib.sh"
[ -n "${ALLOCFAIL:-}" ] && [ -f "$ALLOCFAIL" ] || { nok "ALLOCFAIL names the built tests/fault/allocfail.c shim"; exit 1; }
# The shim stands in front of glibc's allocator; a sanitizer or valgrind puts its own there.
if [ -n "${VALGRIND_HEARTH:-}" ]; then
	ok "SKIP: hearth runs under valgrind, whose allocator the shim cannot stand in front of"; exit 0
fi
if ldd "$HEARTH" 2>/dev/null | grep -Eq 'lib(asan|tsan|msan)'; then
	ok "SKIP: hearth is built with a sanitizer, which owns malloc; the shim cannot stand in front of it"; exit 0
fi
D=$T/data
O=$T/out
CTL=$T/allocfail.rule
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
"$HEARTH" model set --data "$D" --model heater --policy schema/policies/smart-heater.json >/dev/null 2>&1 || nok "model set"
for id in p1 p2 p3 s1 big late; do
	"$HEARTH" device add --data "$D" --id $id --model heater --genkey --out "$O" >/dev/null 2>&1 || nok "add $id"
done

# rule TEXT: what the shim fails from now on (written whole: the shim may read at any moment).
rule() { echo "$1" >"$CTL.tmp" && mv "$CTL.tmp" "$CTL"; sleep 0.1; }
failures() { cat "$CTL.count" 2>/dev/null || echo 0; }
rule off
real=$HEARTH
printf '#!/bin/sh\nLD_PRELOAD="%s" ALLOCFAIL_CTL="%s" exec "%s" "$@"\n' "$ALLOCFAIL" "$CTL" "$real" >"$T/hearth-af"
chmod +x "$T/hearth-af"
HEARTH=$T/hearth-af start_hearth "$D" || { nok "hearth serve starts with the shim preloaded"; exit 1; }
HEARTH=$real

pub() { mosq_pub "$1" -i "$1" -t "hearth/v1/$1/telemetry" -m "{\"temperature\": ${2:-20}}" -q 1; }
stored() {
	sqlite3 "$D/hearth.db" "SELECT COALESCE(SUM(n), 0) FROM telemetry WHERE device_id = '$1' AND field = 'temperature'"
}
alive() { kill -0 "$HPID" 2>/dev/null; }
# serves ID: a fresh connection of device ID publishes at QoS 1 and gets its PUBACK.
serves() { pub "$1" 21 >/dev/null 2>&1; }
t "a device publishes before any fault" serves p1

# A bystander connected all along, subscribed to its own subtree (QoS 1); -d logs its packets.
( exec stdbuf -oL timeout 100 mosquitto_sub -d -h 127.0.0.1 -p "$PORT" --cafile "$O/ca.pem" --cert "$O/s1.crt" \
	--key "$O/s1.key" -i s1 -q 1 -t 'hearth/v1/s1/#' >"$T/bystander.log" 2>&1 ) &
bystander=$!
BG_PIDS="$BG_PIDS $bystander"
t "the bystander is connected and subscribed" wait_for 10 grep -q 'received SUBACK' "$T/bystander.log"

# --- 1. big buffers fail: a client's large packet cannot be read -------------------------------
rule "every=1 min=100000 thread=main"
head -c 200000 /dev/zero | tr '\0' x >"$T/big.payload"
t_fails "a 200 kB PUBLISH gets no PUBACK when its input buffer cannot grow" \
	mosq_pub big -i big -t hearth/v1/big/status -f "$T/big.payload" -q 1
t "that connection was closed for it" grep -q 'big (.*closed: out of memory for input' "$HLOG"
t "allocations were refused" test "$(failures)" -ge 1
t "the server keeps running" alive
t "another device still publishes and gets its PUBACK" serves p2
t "the bystander's connection is still up" kill -0 "$bystander"
t_eq "... its first and only one" 1 "$(grep -c 'received CONNACK' "$T/bystander.log")"
rule off

# --- 2. every 3rd allocation of the event loop fails, under load --------------------------------
# Three devices publish in loops (a new connection each time), one counts its acknowledgements.
load() {
	local id=$1 secs=$2 end=$((SECONDS + $2)) i=0
	while [ $SECONDS -lt $end ] && [ $i -lt 400 ]; do
		if pub "$id" "$i" >/dev/null 2>&1; then echo acked; else echo failed; fi
		i=$((i + 1))
	done >"$T/acks.$id.$3"
}
run_faults() {
	local r=$1 secs=$2 phase=$3 before=$(failures) id pids=""
	for id in p1 p2 p3; do load $id $((secs + 2)) "$phase" & pids="$pids $!"; done
	( end=$((SECONDS + secs + 2)); n=0
	  while [ $SECONDS -lt $end ] && [ $n -lt 200 ]; do
		curl -sk --max-time 3 -o /dev/null "https://127.0.0.1:$API_PORT/healthz"; n=$((n + 1))
	  done ) & pids="$pids $!"
	sleep 1
	rule "$r"
	sleep "$secs"
	rule off
	for p in $pids; do wait "$p"; done
	FAILED=$(( $(failures) - before ))
}
run_faults "every=3 thread=main" 4 loop
t "allocations on the event loop were refused ($FAILED)" test "$FAILED" -ge 10
t "the server kept running" alive
t "publishers saw connections fail for it ($(cat "$T"/acks.p?.loop | grep -c failed))" \
	grep -q failed "$T/acks.p1.loop" "$T/acks.p2.loop" "$T/acks.p3.loop"
t "once allocations work, a device publishes and gets its PUBACK" wait_for 15 serves late
for id in p1 p2 p3; do
	a=$(grep -c acked "$T/acks.$id.loop") s=$(stored $id)
	t "$id: no acknowledged message lost (stored $s >= acked $a)" test "$s" -ge "$a"
done

# --- 3. every 7th allocation of every thread fails: handshakes, TLS contexts, REST, the store ----
run_faults "every=7 thread=any" 3 any
t "allocations on every thread were refused ($FAILED)" test "$FAILED" -ge 10
t "the server kept running" alive
t "once allocations work, a device connects, publishes and gets its PUBACK" wait_for 15 serves late
t_out "the REST API answers" '^ok$' curl -sk --max-time 5 "https://127.0.0.1:$API_PORT/healthz"
for id in p1 p2 p3; do
	a=$(( $(grep -c acked "$T/acks.$id.loop") + $(grep -c acked "$T/acks.$id.any") )) s=$(stored $id)
	t "$id: still no acknowledged message lost (stored $s >= acked $a)" test "$s" -ge "$a"
done
t_fails "no crash report in the log" grep -Eq 'Segmentation|Aborted|assert|double free|corrupted' "$HLOG"
kill "$bystander" 2>/dev/null
stop_hearth
t "the server stopped cleanly when asked" grep -q 'hearth info: stopped:' "$HLOG"
t_eq "the database is sound" ok "$(sqlite3 "$D/hearth.db" 'PRAGMA integrity_check')"
