# Load held: devices that are connected keep publishing QoS 1 telemetry and getting their PUBACKs
# ($MOSQ_CLIENT stream mode, libmosquitto, from 127.0.0.1) while the endpoint holds 1,000 half-open
# TLS connections (mqtt_raw.py) and then takes a flood of full handshakes and CONNECTs from one
# address ($MOSQ_CLIENT flood mode); and the per-address limits apply: max_handshakes_per_address
# to unfinished handshakes, max_connections_per_address to connections (mosquitto_sub behind one
# address), both changed by SIGHUP, each refusal counted in /metrics and logged once per burst.
# Those other clients come from other loopback addresses (127.0.0.10 and up; the server listens on
# 127.0.0.1 only), as they would from other hosts.
. "$(dirname "$0")/lib.sh"
[ -x "${MOSQ_CLIENT:-}" ] || { nok "MOSQ_CLIENT names the built tests/integration/mosq_client.c"; exit 1; }
D=$T/data
O=$T/out
ESTABLISHED="e1 e2 e3 e4"

"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
{
	printf '{"policy": 1, "fields": {'
	for f in $(seq 0 63); do
		[ "$f" -gt 0 ] && printf ', '
		printf '"k%d": {"type": "number", "aggregate": "mean", "bucket_s": 60, "retention_days": 1}' "$f"
	done
	printf '}}\n'
} > "$T/policy.json"
"$HEARTH" model set --data "$D" --model meter --policy "$T/policy.json" >/dev/null 2>&1 || nok "model set"
for id in $ESTABLISHED f1 f2 f3 f4 c1 c2 c3 c4 c5 c6 c7 c8 p1; do
	"$HEARTH" device add --data "$D" --id "$id" --model meter --genkey --out "$O" >/dev/null 2>&1 || nok "add $id"
done
TOKEN=$(new_token metrics read)
printf 'max_connections_per_address = 150\nmax_handshakes_per_address = 100\n' > "$D/hearth.conf"
# Half-open connections are held for as long as this test looks at them.
start_hearth "$D" --handshake-timeout-ms 20000 || { nok "hearth serve starts"; exit 1; }

# metric NAME: its value now, from GET /metrics (the loop refreshes it every 250 ms).
metric() { api "$TOKEN" GET /metrics | awk -v m="$1" '$1 == m { print $2 }'; }
metric_is() { [ "$(metric "$1")" = "$2" ]; }
metric_at_least() { local v; v=$(metric "$1"); [ -n "$v" ] && [ "$v" -ge "$2" ]; }
acks() { wc -l < "$T/acked.$1"; }
# progress WHAT BEFORE...: every established device got PUBACKs since the counts in BEFORE.
progress() {
	local what=$1 id n slow="" got=""; shift
	for id in $ESTABLISHED; do
		n=$(( $(acks "$id") - $1 )); shift
		got="$got $id:$n"
		[ "$n" -ge 5 ] || slow="$slow $id"
	done
	t_eq "$what: every established device kept getting PUBACKs (new:$got)" "" "$slow"
}
snapshot() { local id s=""; for id in $ESTABLISHED; do s="$s $(acks "$id")"; done; echo "$s"; }
REFUSED='hearth_refused_total{reason="address_limit"}'

# The established devices: QoS 1 telemetry, 20 messages a second each (for up to 160 s), at most 8
# unacknowledged.
for id in $ESTABLISHED; do
	"$MOSQ_CLIENT" --port "$PORT" --cafile "$O/ca.pem" --cert "$O/$id.crt" --key "$O/$id.key" --id "$id" \
		--timeout 300 stream --count 3200 --rate 20 --window 8 --acked "$T/acked.$id" > "$T/client.$id" 2>&1 &
	BG_PIDS="$BG_PIDS $!"
	eval "pid_$id=$!"
done
for id in $ESTABLISHED; do
	wait_for 20 test -s "$T/acked.$id" || nok "$id: a first PUBACK"
done

# 1. 1,000 half-open TLS connections from ten addresses (100 each, the handshake limit): half say
# nothing, half send half a ClientHello. All are held; the devices go on.
before=$(snapshot)
accepted=$(metric hearth_accepted_total)
for i in 0 1 2 3 4 5 6 7 8 9; do
	partial=none
	[ $((i % 2)) -eq 1 ] && partial=half
	python3 tests/integration/mqtt_raw.py --host 127.0.0.1 --port "$PORT" --timeout 10 \
		--bind "127.0.0.1$i" --repeat-handshakes 100 --hold 6 --partial $partial > "$T/halfopen.$i" 2>&1 &
	BG_PIDS="$BG_PIDS $!"
	eval "half_$i=$!"
done
for i in 0 1 2 3 4 5 6 7 8 9; do eval "wait \$half_$i"; done
t_eq "1,000 half-open connections were all held to the end" "10" \
	"$(cat "$T"/halfopen.* | grep -c 'opened=100 connect_failed=0 closed_by_server=0 still_open=100')"
progress "1,000 half-open connections" $before
t "the server accepted all 1,000" wait_for 5 metric_at_least hearth_accepted_total $((accepted + 1000))
t_eq "none was refused: 100 per address is within the limit" 0 "$(metric "$REFUSED")"

# 2. max_handshakes_per_address: 300 from one address, silent. 100 are held, 200 closed at once.
t_out "300 half-open from one address: 100 held, 200 refused" \
	"opened=300 connect_failed=0 closed_by_server=200 still_open=100" \
	python3 tests/integration/mqtt_raw.py --host 127.0.0.1 --port "$PORT" --timeout 10 --bind 127.0.0.20 \
	--repeat-handshakes 300 --hold 3 --partial none
t "... each refusal counted in /metrics" wait_for 5 metric_is "$REFUSED" 200
t_eq "... and logged once for the burst, not per connection" 1 \
	"$(grep -c '127.0.0.20: refusing new connections from this address: 100 open, 100 of them in the TLS handshake (max_handshakes_per_address = 100)' "$HLOG")"

# 3. A flood of CONNECTs from 127.0.0.22: 8 libmosquitto clients reconnecting as fast as they can
# for 6 s, each connection a full TLS handshake, CONNECT and QoS 1 PUBLISH, as four devices (so
# sessions are taken over too). First within the limits: the handshake threads are busy with it
# all; then with the address's handshake limit lowered to 8 by SIGHUP and 6 half-open
# connections from the same address sitting on it.
flood() {
	local k id
	for k in 1 2 3 4 5 6 7 8; do
		id=f$(( (k - 1) % 4 + 1 ))
		"$MOSQ_CLIENT" --port "$PORT" --cafile "$O/ca.pem" --cert "$O/$id.crt" --key "$O/$id.key" --id "$id" \
			--bind 127.0.0.22 --timeout 6 flood --count 10000 > "$T/flood.$k" 2> "$T/flood.$k.err" &
		BG_PIDS="$BG_PIDS $!"
		eval "flood_$k=$!"
	done
	for k in 1 2 3 4 5 6 7 8; do eval "wait \$flood_$k"; done
	tried=$(cat "$T"/flood.? | awk '{ s += $2 } END { print s + 0 }')
	acked=$(cat "$T"/flood.? | awk '{ s += $6 } END { print s + 0 }')
	echo "  flood: $tried connections tried, $acked of them through to a PUBACK"
}
before=$(snapshot)
refused=$(metric "$REFUSED")
handshakes=$(metric 'hearth_handshakes_total{kind="full"}')
flood
progress "a flood of $tried CONNECTs" $before
t "the flood's connections got through ($acked)" test "$acked" -gt 0
t "each with a full handshake" wait_for 5 metric_at_least 'hearth_handshakes_total{kind="full"}' $((handshakes + acked))
t_eq "none was refused: 8 at a time is within the limits" "$refused" "$(metric "$REFUSED")"

printf 'max_connections_per_address = 150\nmax_handshakes_per_address = 8\n' > "$D/hearth.conf"
kill -HUP "$HPID"
t "SIGHUP applies the new handshake limit" wait_for 5 grep -q 'max_handshakes_per_address = 8 (was 100)' "$HLOG"
accepted=$(metric hearth_accepted_total)
python3 tests/integration/mqtt_raw.py --host 127.0.0.1 --port "$PORT" --timeout 10 --bind 127.0.0.22 \
	--repeat-handshakes 6 --hold 9 --partial none > "$T/squat" 2>&1 &
squat=$!
BG_PIDS="$BG_PIDS $squat"
t "6 half-open connections from 127.0.0.22 are in" wait_for 5 metric_at_least hearth_accepted_total $((accepted + 6))
before=$(snapshot)
refused=$(metric "$REFUSED")
flood
wait "$squat"
progress "a flood of $tried CONNECTs at the handshake limit" $before
t "the flood's connections within the limit got through ($acked)" test "$acked" -gt 0
t "the others were refused at the address's handshake limit, and counted" \
	wait_for 5 metric_at_least "$REFUSED" $((refused + 1))
echo "  refused at the limit: $(( $(metric "$REFUSED") - refused ))"
t_eq "... and logged once for the burst" 1 "$(grep -c '127.0.0.22: refusing new connections' "$HLOG")"
t_out "the half-open connections on the limit were held throughout" "closed_by_server=0 still_open=6" cat "$T/squat"

# 4. max_connections_per_address, lowered to 5 by SIGHUP: of 8 devices behind one address
# (mosquitto_sub, connected until stopped), 5 get in; the address's others are refused, while
# 127.0.0.1's devices (4) and a fifth one from there are not touched.
printf 'max_connections_per_address = 5\nmax_handshakes_per_address = 100\n' > "$D/hearth.conf"
kill -HUP "$HPID"
t "SIGHUP applies the new connection limit" wait_for 5 grep -q 'max_connections_per_address = 5 (was 150)' "$HLOG"
before=$(snapshot)
refused=$(metric "$REFUSED")
for k in 1 2 3 4 5 6 7 8; do
	timeout 60 mosquitto_sub -h 127.0.0.1 -p "$PORT" -A 127.0.0.21 --cafile "$O/ca.pem" --cert "$O/c$k.crt" \
		--key "$O/c$k.key" -i "c$k" -t "hearth/v1/c$k/manifest/#" -q 1 > "$T/holder.$k" 2>&1 &
	BG_PIDS="$BG_PIDS $!"
	eval "holder_$k=$!"
done
t "exactly 5 of them are connected (4 + 5 connections in all)" wait_for 15 metric_is hearth_connections 9
t "the others were refused at the limit" wait_for 5 metric_at_least "$REFUSED" $((refused + 3))
sleep 1
t "... and stay out: still 9 connections" metric_is hearth_connections 9
t "a fifth device from 127.0.0.1 still connects and publishes" timeout 20 mosquitto_pub -h 127.0.0.1 \
	-p "$PORT" --cafile "$O/ca.pem" --cert "$O/p1.crt" --key "$O/p1.key" -i p1 -t hearth/v1/p1/telemetry \
	-m '{"k0": 1}' -q 1
progress "8 devices behind one address" $before
for k in 1 2 3 4 5 6 7 8; do eval "kill \$holder_$k" 2>/dev/null; done
for k in 1 2 3 4 5 6 7 8; do eval "wait \$holder_$k" 2>/dev/null; done

# The end: the server is up, and the established devices were never dropped.
t "the server is still running" kill -0 "$HPID"
t_out "its REST API answers" "^ok$" curl -sS --max-time 10 --cacert "$D/certs/ca.pem" "https://127.0.0.1:$API_PORT/healthz"
gone=""
for id in $ESTABLISHED; do
	eval "kill -0 \$pid_$id" 2>/dev/null || gone="$gone $id"
done
t_eq "every established device is still connected and publishing" "" "$gone"
t_eq "none of their connections was closed by the server" 0 \
	"$(grep -cE '^.* (e[1-4]) \(127\.0\.0\.1:[0-9]+\): closed' "$HLOG")"
for id in $ESTABLISHED; do eval "kill \$pid_$id" 2>/dev/null; done
for id in $ESTABLISHED; do eval "wait \$pid_$id" 2>/dev/null; done
stop_hearth
[ "$fail" -eq 0 ]
