# The northbound bridge (issue 8): hearth publishes what it stored — minimized records, device
# status, Home Assistant discovery configs — into an external Mosquitto broker that the test runs
# on a loopback port, through an outbox that survives the broker being away. hearth runs on a
# stopped fake clock that the test moves over hour boundaries, so buckets close when the test says.
# A subscriber to '#' on the external broker records everything it ever receives, and sentinel
# values that the policy drops must never be in it.
. "$(dirname "$0")/lib.sh"
D=$T/data
O=$T/out
P=$T/pki
FAKELIB=$(faketime_lib)
t "libfaketime is installed" test -n "$FAKELIB"
t "mosquitto (the broker) is installed" command -v mosquitto
[ "$fail" -eq 0 ] || exit 1
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
"$HEARTH" model set --data "$D" --model heater --policy schema/policies/smart-heater.json >/dev/null 2>&1 || nok "model set"
for id in h1 h2 h3; do
	"$HEARTH" device add --data "$D" --id $id --model heater --genkey --out "$O" >/dev/null 2>&1 || nok "add $id"
done

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }

# --- a test PKI (openssl CLI): the broker's CA, a broker certificate for 127.0.0.1, a client
# certificate for hearth, and a second CA with a broker certificate of its own ------------------
mkdir -p "$P" && chmod 700 "$P"
pki_ca() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3 -subj "/CN=$2" \
	-keyout "$P/$1.key" -out "$P/$1.crt" 2>/dev/null; }
pki_leaf() { # NAME CA CN EXT
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$3" \
		-keyout "$P/$1.key" -out "$P/$1.csr" 2>/dev/null &&
	printf '%s\n' "$4" > "$P/$1.ext" &&
	openssl x509 -req -in "$P/$1.csr" -CA "$P/$2.crt" -CAkey "$P/$2.key" -CAcreateserial -days 3 \
		-extfile "$P/$1.ext" -out "$P/$1.crt" 2>/dev/null && chmod 600 "$P/$1.key"
}
pki_ca ca "bridge test CA" && pki_ca evil "another CA" &&
pki_leaf broker ca broker "subjectAltName=IP:127.0.0.1" &&
pki_leaf evilbroker evil broker "subjectAltName=IP:127.0.0.1" &&
pki_leaf client ca hearth "extendedKeyUsage=clientAuth" &&
pki_leaf sub ca subscriber "extendedKeyUsage=clientAuth" || { nok "the test PKI"; exit 1; }

# --- settings are checked before the server starts ------------------------------------------------
bad_conf() { printf '%s\n' "$@" > "$D/hearth.conf"; }
bad_conf "bridge_host = 127.0.0.1" "bridge_certfile = $P/client.crt"
t_out "a client certificate without its key is refused, by name" "bridge_certfile is set without bridge_keyfile" \
	"$HEARTH" config check --data "$D"
bad_conf "bridge_host = 127.0.0.1" "bridge_tls = no" "bridge_cafile = $P/ca.crt"
t_out "a CA file without TLS is refused" "bridge_cafile is set but bridge_tls = no" "$HEARTH" config check --data "$D"
printf 'hearth\nsecret-SENTINEL-pw\n' > "$T/pw" && chmod 644 "$T/pw"
bad_conf "bridge_host = 127.0.0.1" "bridge_password_file = $T/pw"
t_out "a password file others may read is refused" "bridge_password_file: $T/pw may be read by others" \
	"$HEARTH" config check --data "$D"
chmod 600 "$T/pw"
bad_conf "bridge_host = 127.0.0.1" "bridge_tls = no" "bridge_password_file = $T/pw"
t_out "a password over plain MQTT is refused" "bridge_password_file is set but bridge_tls = no" \
	"$HEARTH" config check --data "$D"
printf 'only-a-user\n' > "$T/pw1" && chmod 600 "$T/pw1"
bad_conf "bridge_host = 127.0.0.1" "bridge_password_file = $T/pw1"
t_out "a password file without a password is refused" "bridge_password_file: .*line 2: the password must be" \
	"$HEARTH" config check --data "$D"
bad_conf "bridge_host = 127.0.0.1" "bridge_cafile = $T/nothing.pem"
timeout 20 "$HEARTH" serve --data "$D" --mqtt 127.0.0.1:0 --api off > "$T/serve.out" 2>&1; rc=$?
t_eq "serve refuses an unreadable CA file" 1 "$rc"
t_out "... naming the setting" "^hearth serve: bridge_cafile: cannot read $T/nothing.pem" cat "$T/serve.out"
bad_conf "bridge_host = 127.0.0.1" "bridge_prefix = hearth/#/"
t_out "a wildcard in the prefix is refused" "bridge_prefix: 'hearth/#/' holds a wildcard" "$HEARTH" config check --data "$D"
bad_conf "bridge_host = 127.0.0.1" "bridge_records = telemetry,raw"
t_out "an unknown record kind is refused" "bridge_records: 'telemetry,raw' is not telemetry, status" \
	"$HEARTH" config check --data "$D"
t_fails "the password never appears in any of that" grep -rq "secret-SENTINEL-pw" "$T/.out" "$T/serve.out"
rm -f "$D/hearth.conf"

# --- the external broker ----------------------------------------------------------------------------
# start_broker NAME CONF-LINES...: mosquitto on 127.0.0.1 only, with its own config; sets MPID.
start_broker() {
	local name=$1; shift
	mkdir -p "$T/$name"
	MLOG=$T/$name/log.$((${MLOG_N:=0} + 1)); MLOG_N=$((MLOG_N + 1))
	{ echo "user $(id -un)"; echo "log_dest file $MLOG"; echo "log_type all"; printf '%s\n' "$@"; } > "$T/$name/mosquitto.conf"
	mosquitto -c "$T/$name/mosquitto.conf" > "$MLOG.out" 2>&1 &
	MPID=$!; BG_PIDS="$BG_PIDS $MPID"
	wait_for 10 grep -q "mosquitto version .* running" "$MLOG" || { cat "$MLOG"; return 1; }
}
stop_broker() {
	kill -TERM "$MPID" 2>/dev/null
	local i=0
	while kill -0 "$MPID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	wait "$MPID" 2>/dev/null
}
MPORT=$(free_port)
PLAIN_CONF=("listener $MPORT 127.0.0.1" "allow_anonymous true" "persistence true" "persistence_location $T/plain/")
start_broker plain "${PLAIN_CONF[@]}" || { nok "mosquitto starts"; exit 1; }

# Everything the external broker ever delivers: a persistent session (QoS 1) so nothing published
# while it reconnects is missed.
CAP=$T/capture
cap_start() {
	timeout 600 mosquitto_sub -h 127.0.0.1 -p "$MPORT" -i capture -c -q 1 -t '#' -F '%t %l %p' >> "$CAP" 2>"$T/capture.err" &
	CPID=$!; BG_PIDS="$BG_PIDS $CPID"
}
cap_start
t "the capture subscriber is connected" wait_for 10 grep -q "New client connected .* as capture" "$MLOG"

# --- hearth with the bridge, plain MQTT ----------------------------------------------------------
START=$(( ($(date +%s) / 86400 + 1) * 86400 ))   # the next midnight (UTC): after the certificates' issue
CLOCK=$T/clock
set_clock() { date -u -d "@$1" '+%Y-%m-%d %H:%M:%S' > "$CLOCK"; }
set_clock $((START + 600))
serve_fake() {
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 LD_PRELOAD=$FAKELIB \
	FAKETIME_TIMESTAMP_FILE=$CLOCK FAKETIME_NO_CACHE=1 FAKETIME_DONT_FAKE_MONOTONIC=1 start_hearth "$D" "$@"
}
on_clock() { env LD_PRELOAD="$FAKELIB" FAKETIME_TIMESTAMP_FILE="$CLOCK" FAKETIME_NO_CACHE=1 \
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 "$@"; }
cat > "$D/hearth.conf" <<EOF
bridge_host = 127.0.0.1
bridge_port = $MPORT
bridge_tls = no
bridge_client_id = hearth-test
EOF
serve_fake || { nok "hearth serve starts with the bridge"; exit 1; }
t "the bridge connects to the broker" wait_for 10 grep -q "bridge: connected to 127.0.0.1:$MPORT (plain)" "$HLOG"
TOKEN=$(new_token bridge-test read)

cap_has() { grep -q -- "$1" "$CAP"; }
t "hearth says it is online (retained, for Home Assistant's availability)" wait_for 10 cap_has "^hearth/availability 6 online$"
t "h1's discovery config for temperature arrives" wait_for 10 cap_has "^homeassistant/sensor/hearth_h1/temperature/config "
t "h2's too" wait_for 10 cap_has "^homeassistant/sensor/hearth_h2/temperature/config "
cfg=$(grep -m1 "^homeassistant/sensor/hearth_h1/temperature/config " "$CAP" | cut -d' ' -f3-)
t_eq "it has what Home Assistant requires, and a unit and class for a temperature" \
	"temperature hearth.h1.temperature hearth/h1/telemetry hearth_h1 heater hearth °C temperature measurement" \
	"$(printf '%s' "$cfg" | python3 -c '
import json, sys
c = json.load(sys.stdin)
d = c["device"]
print(c["name"], c["unique_id"], c["state_topic"], " ".join(d["identifiers"]), d["model"], d["manufacturer"],
      c["unit_of_measurement"], c["device_class"], c["state_class"])')"
t_out "its template reads the field from the record" "value_json\['values'\]\['temperature'\]\['value'\]" echo "$cfg"
t_eq "every field the policy keeps has a config, and nothing else does" \
	"error_code firmware humidity setpoint temperature" \
	"$(sed -n 's|^homeassistant/sensor/hearth_h1/\([^/]*\)/config .*|\1|p' "$CAP" | sort -u | tr '\n' ' ' | sed 's/ $//')"
t "h1's status is published (retained)" wait_for 10 cap_has '^hearth/h1/status [0-9]* {"device":"h1","status":"active","model":"heater"'
t_out "it holds the certificate's expiry" '"cert_not_after":[0-9]+' grep -m1 "^hearth/h1/status" "$CAP"

pub() { mosq_pub "$1" -i "$1" -t "hearth/v1/$1/telemetry" -q 1 "${@:2}"; }
t "h1 sends telemetry with sensitive sentinels" pub h1 -m \
	'{"temperature": 21.3, "setpoint": 21.0, "humidity": 41, "error_code": "E7", "co2_ppm": 987654,
	  "Motion": "SENTINEL-7f3a", "wifi": {"ssid": "SENTINEL-ssid"}, "power_w": 55511.5}'
t "h1 sends a second sample" pub h1 -m '{"temperature": 22.2, "occupancy": true}'
t "h2 sends telemetry" pub h2 -m '{"temperature": 19.9, "setpoint": 20, "lux": 424242}'
sleep 6 # longer than the bridge's look at the store (5 s)
t_eq "no record reaches the broker while the hour is open" 0 "$(grep -c '^hearth/[^/]*/telemetry ' "$CAP")"
t_eq "nor a last-seen time: it would time the first message of the hour" 0 "$(grep -c '"last_seen"' "$CAP")"
set_clock $((START + 3600 + 1))
t "when the hour closes, a record per device arrives" wait_for 10 sh -c "[ \$(grep -c '^hearth/[^/]*/telemetry ' '$CAP') -ge 2 ]"
t "and h1's status shows the hour it was last seen in" wait_for 10 grep -q "^hearth/h1/status .*\"last_seen\":$START" "$CAP"
rec() { sed -n "s|^hearth/$1/telemetry [0-9]* ||p" "$CAP"; }
t_eq "h1's record: what the store holds (hourly means, the last error code), bucket-aligned" \
	"h1 $START 3600 mean:21.75:2 mean:21:1 last:E7:1 | error_code setpoint temperature" \
	"$(rec h1 | head -1 | python3 -c '
import json, sys
r = json.load(sys.stdin)
v = r["values"]
print(r["device"], r["bucket_start"], r["bucket_s"],
      *["%s:%g:%d" % (v[k]["agg"], v[k]["value"], v[k]["n"]) if k != "error_code" else "%s:%s:%d" % (v[k]["agg"], v[k]["value"], v[k]["n"]) for k in ("temperature", "setpoint", "error_code")],
      "|", " ".join(sorted(v)))')"
t_eq "the store holds the same" 3 \
	"$("$HEARTH" telemetry query --data "$D" --device h1 | grep -cE 'temperature +mean +21.75 \(n=2\)|setpoint +mean +21 \(n=1\)|error_code +last +E7 \(n=1\)')"
t "the outbox is empty once the broker acknowledged them" wait_for 10 sh -c "'$HEARTH' bridge status --data '$D' | grep -q '^outbox: *0 records'"
# /metrics is a snapshot the server takes every 250 ms: waited for, not sampled once.
metrics_has() { api "$TOKEN" GET /metrics | grep -q "^$1$"; }
t "/metrics: connected" wait_for 10 metrics_has "hearth_bridge_connected 1"
t "/metrics: the outbox is empty" wait_for 10 metrics_has "hearth_bridge_outbox_rows 0"
api "$TOKEN" GET /metrics > "$T/metrics"
m() { awk -v k="$1" '$1 == k { print $2 }' "$T/metrics"; }
t "/metrics: records sent" test "$(m hearth_bridge_records_sent_total)" -ge 2
t_eq "/metrics: nothing dropped" 0 "$(m hearth_bridge_dropped_total)"
t_out "/metrics: reconnects are counted" "^hearth_bridge_reconnects_total [0-9]+$" cat "$T/metrics"
t_out "bridge status: the target, without secrets" "^target: +127.0.0.1:$MPORT \(tls no, client certificate no, username no\)" \
	"$HEARTH" bridge status --data "$D"
t_out "bridge status: connected" "^broker: +connected since" "$HEARTH" bridge status --data "$D"

# --- the broker goes away: records wait in the outbox, then arrive in order, none lost --------------
stop_broker
t "hearth notices the broker is gone" wait_for 15 grep -q "bridge: connection to 127.0.0.1:$MPORT lost" "$HLOG"
for h in 1 2 3; do
	t "hour $h: h1 sends while the broker is away" pub h1 -m "{\"temperature\": $((10 + h)), \"co2_ppm\": 987654}"
	set_clock $((START + 3600 * (h + 1) + 1))
	t "hour $h: its record waits in the outbox" \
		wait_for 10 sh -c "'$HEARTH' bridge status --data '$D' | grep -q '^outbox: *$h records*,'"
done
t_out "bridge status: not connected" "^broker: +not connected since" "$HEARTH" bridge status --data "$D"
t_out "bridge status: the outbox's size and oldest record" "^outbox: +3 records, [0-9]+ bytes, oldest queued" \
	"$HEARTH" bridge status --data "$D"
t "/metrics: 3 records waiting" wait_for 10 metrics_has "hearth_bridge_outbox_rows 3"
t "/metrics: not connected" wait_for 10 metrics_has "hearth_bridge_connected 0"
# The first attempt after the loss comes after a backoff: wait for it rather than race it.
reconnects_seen() { [ "$(api "$TOKEN" GET /metrics | awk '$1 == "hearth_bridge_reconnects_total" { print $2 }')" -ge 1 ] 2>/dev/null; }
t "/metrics: reconnects counted" wait_for 20 reconnects_seen
start_broker plain "${PLAIN_CONF[@]}" || { nok "mosquitto restarts"; exit 1; }
t "hearth reconnects (backoff at most 60 s)" wait_for 70 sh -c "[ \$(grep -c 'bridge: connected to 127.0.0.1:$MPORT' '$HLOG') -ge 2 ]"
t "the queued records arrive" wait_for 20 sh -c "[ \$(grep -c '^hearth/h1/telemetry ' '$CAP') -ge 4 ]"
temps() { rec h1 | python3 -c '
import json, sys
print(" ".join("%g" % json.loads(l)["values"]["temperature"]["value"] for l in sys.stdin))'; }
t_eq "in order, none lost, none twice" "21.75 11 12 13" "$(temps)"
t "the outbox drains" wait_for 10 sh -c "'$HEARTH' bridge status --data '$D' | grep -q '^outbox: *0 records'"
t "the discovery configs are published again after the reconnect" \
	wait_for 10 sh -c "[ \$(grep -c '^homeassistant/sensor/hearth_h1/temperature/config ' '$CAP') -ge 2 ]"

# --- a decommissioned device's discovery configs and status are removed (empty retained) ---------
t "h2 is decommissioned" "$HEARTH" device decommission --data "$D" --id h2
t "its discovery configs are cleared" wait_for 15 grep -q "^homeassistant/sensor/hearth_h2/temperature/config 0 $" "$CAP"
t "... every one of them" wait_for 10 sh -c "[ \$(grep -c '^homeassistant/sensor/hearth_h2/[a-z_]*/config 0 $' '$CAP') -eq 5 ]"
t "its status is cleared" wait_for 10 grep -q "^hearth/h2/status 0 $" "$CAP"
retained() { timeout 10 mosquitto_sub -h 127.0.0.1 -p "$MPORT" -t '#' --retained-only -W 2 -F '%t' 2>/dev/null; }
retained > "$T/retained"
t_eq "the broker keeps nothing retained of h2" "" "$(grep hearth_h2 "$T/retained"; grep '^hearth/h2/' "$T/retained")"
t "... and still h1's configs" grep -q "^homeassistant/sensor/hearth_h1/temperature/config$" "$T/retained"
t_eq "the store forgot h2's retained topics" 0 "$(sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM bridge_topics WHERE device_id = 'h2'")"
t "h3 is revoked" "$HEARTH" device revoke --data "$D" --id h3
t "a revoked device's discovery configs are cleared" \
	wait_for 15 sh -c "[ \$(grep -c '^homeassistant/sensor/hearth_h3/[a-z_]*/config 0 $' '$CAP') -eq 5 ]"
t "its status says revoked (retained)" wait_for 10 grep -q '^hearth/h3/status [0-9]* {"device":"h3","status":"revoked"' "$CAP"
stop_hearth
t "hearth said offline when it stopped" wait_for 5 grep -q "^hearth/availability 7 offline$" "$CAP"
kill "$CPID" 2>/dev/null; wait "$CPID" 2>/dev/null
stop_broker

# --- TLS with a client certificate (require_certificate) and a username and password -------------
TPORT=$(free_port)
mosquitto_passwd -b -c "$T/broker.passwd" hearth secret-SENTINEL-pw >/dev/null 2>&1 || nok "mosquitto_passwd"
mosquitto_passwd -b "$T/broker.passwd" sub sub-pw >/dev/null 2>&1 || nok "mosquitto_passwd"
start_broker tls "listener $TPORT 127.0.0.1" "cafile $P/ca.crt" "certfile $P/broker.crt" "keyfile $P/broker.key" \
	"require_certificate true" "allow_anonymous false" "password_file $T/broker.passwd" || { nok "TLS mosquitto starts"; exit 1; }
TCAP=$T/capture-tls
timeout 600 mosquitto_sub -h 127.0.0.1 -p "$TPORT" --cafile "$P/ca.crt" --cert "$P/sub.crt" --key "$P/sub.key" \
	-u sub -P sub-pw -i tls-capture -t '#' -F '%t %l %p' > "$TCAP" 2>"$T/tcap.err" &
TCPID=$!; BG_PIDS="$BG_PIDS $TCPID"
t "the TLS capture subscriber is connected" wait_for 10 grep -q "New client connected .* as tls-capture" "$MLOG"
cat > "$D/hearth.conf" <<EOF
bridge_host = 127.0.0.1
bridge_port = $TPORT
bridge_cafile = $P/ca.crt
bridge_certfile = $P/client.crt
bridge_keyfile = $P/client.key
bridge_password_file = $T/pw
EOF
serve_fake || { nok "hearth serve starts with a TLS bridge"; exit 1; }
t "the bridge connects over TLS, verifying the broker" \
	wait_for 10 grep -q "bridge: connected to 127.0.0.1:$TPORT (TLS, certificate and host name verified)" "$HLOG"
t "the broker saw hearth's username" wait_for 5 grep -q "New client connected .* as hearth-.* u'hearth'" "$MLOG"
t "h1's discovery configs arrive over TLS" wait_for 10 grep -q "^homeassistant/sensor/hearth_h1/temperature/config " "$TCAP"
t "h1 sends" pub h1 -m '{"temperature": 30, "co2_ppm": 987654, "Motion": "SENTINEL-7f3a"}'
set_clock $((START + 5 * 3600 + 1))
t "its record arrives over TLS" wait_for 10 grep -q '^hearth/h1/telemetry [0-9]* .*"temperature":{"agg":"mean","value":30' "$TCAP"
t_out "bridge status: TLS, client certificate, username" \
	"^target: +127.0.0.1:$TPORT \(tls yes, client certificate yes, username yes\)" "$HEARTH" bridge status --data "$D"
stop_hearth
t_fails "the password is not in hearth's log" grep -q "secret-SENTINEL-pw" "$HLOG"
t_fails "nor in bridge status" sh -c "'$HEARTH' bridge status --data '$D' | grep -q secret-SENTINEL-pw"
kill "$TCPID" 2>/dev/null; wait "$TCPID" 2>/dev/null
stop_broker

# --- a broker that shows a certificate from another CA, or for another name, is refused -----------
EPORT=$(free_port)
start_broker evil "listener $EPORT 127.0.0.1" "allow_anonymous true" "certfile $P/evilbroker.crt" \
	"keyfile $P/evilbroker.key" || { nok "the other CA's mosquitto starts"; exit 1; }
ECAP=$T/capture-evil
timeout 600 mosquitto_sub -h 127.0.0.1 -p "$EPORT" --cafile "$P/evil.crt" -i evil-capture -t '#' -v > "$ECAP" 2>"$T/ecap.err" &
ECPID=$!; BG_PIDS="$BG_PIDS $ECPID"
t "its own subscriber is connected" wait_for 10 grep -q "New client connected .* as evil-capture" "$MLOG"
sed -i "s/^bridge_port = .*/bridge_port = $EPORT/" "$D/hearth.conf"
serve_fake || { nok "hearth serve starts"; exit 1; }
t "hearth refuses the broker's certificate, and says why" \
	wait_for 10 grep -q "bridge: cannot connect to 127.0.0.1:$EPORT (.*certificate verify failed" "$HLOG"
t "h1 sends" pub h1 -m '{"temperature": 31}'
set_clock $((START + 6 * 3600 + 1))
t "its record waits in the outbox" wait_for 10 sh -c "'$HEARTH' bridge status --data '$D' | grep -q '^outbox: *1 record,'"
sleep 2
t_eq "nothing reached that broker" "" "$(cat "$ECAP")"
t_fails "hearth never connected to it" grep -q "bridge: connected to 127.0.0.1:$EPORT" "$HLOG"
stop_hearth
kill "$ECPID" 2>/dev/null; wait "$ECPID" 2>/dev/null
stop_broker
pki_leaf othername ca broker "subjectAltName=DNS:broker.example" || nok "a certificate for another name"
NPORT=$(free_port)
start_broker named "listener $NPORT 127.0.0.1" "allow_anonymous true" "certfile $P/othername.crt" \
	"keyfile $P/othername.key" || { nok "mosquitto starts"; exit 1; }
sed -i "s/^bridge_port = .*/bridge_port = $NPORT/" "$D/hearth.conf"
serve_fake || { nok "hearth serve starts"; exit 1; }
t "a certificate of the right CA for another name is refused (host name verification)" \
	wait_for 10 grep -q "bridge: cannot connect to 127.0.0.1:$NPORT (.*host name verification failed" "$HLOG"
t_out "the record still waits" "^outbox: +1 record," "$HEARTH" bridge status --data "$D"
stop_hearth
stop_broker

for s in 987654 SENTINEL-7f3a SENTINEL-ssid 55511 occupancy 424242 co2 Motion ssid power_w lux; do
	t_eq "sentinel $s never reaches an external broker" 0 "$(cat "$CAP" "$TCAP" "$ECAP" | grep -c -- "$s")"
done
t_fails "no sanitizer report from serve" grep -Eq 'Sanitizer|runtime error:' "$T"/serve.*.log
t_eq "the database is sound" ok "$(sqlite3 "$D/hearth.db" 'PRAGMA integrity_check')"
