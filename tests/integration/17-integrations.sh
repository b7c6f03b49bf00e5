# Integration clients: `hearth client add --role integration` makes a certificate identity that may
# only read hearth/v1/+/telemetry, where it gets one minimized record per device and closed bucket
# (what the store holds), never a raw payload. The server runs on a stopped fake clock that the
# test moves past an hour boundary, so buckets close when the test says.
. "$(dirname "$0")/lib.sh"
D=$T/data
O=$T/out
FAKELIB=$(faketime_lib)
t "libfaketime is installed" test -n "$FAKELIB"
[ "$fail" -eq 0 ] || exit 1
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
"$HEARTH" model set --data "$D" --model heater --policy schema/policies/smart-heater.json >/dev/null 2>&1 || nok "model set"
for id in h1 h2; do
	"$HEARTH" device add --data "$D" --id $id --model heater --genkey --out "$O" >/dev/null 2>&1 || nok "add $id"
done

# --- the CLI -------------------------------------------------------------------------------------
t_out "client add makes an integration client" "client ha added \(role integration" \
	"$HEARTH" client add --data "$D" --id ha --role integration --genkey --out "$O"
t "its key is 0600" test "$(mode_of "$O/ha.key")" = 600
t "its certificate verifies against the CA (openssl verify)" openssl verify -CAfile "$O/ca.pem" "$O/ha.crt"
t_out "its CN is its id" "CN ?= ?ha" openssl x509 -in "$O/ha.crt" -noout -subject
t_out "it is a TLS client certificate" "TLS Web Client Authentication" openssl x509 -in "$O/ha.crt" -noout -ext extendedKeyUsage
make_csr "$T/csr.pem"
t_out "a client can be added from a CSR, with a random id" "client [0-9a-f]{32} added" \
	"$HEARTH" client add --data "$D" --role integration --csr "$T/csr.pem" --out "$O"
t_fails "the role 'device' is refused" "$HEARTH" client add --data "$D" --id x1 --role device --genkey --out "$O"
t_fails "an unknown role is refused" "$HEARTH" client add --data "$D" --id x2 --role admin --genkey --out "$O"
t_out "... with a message that names it" "--role 'admin' is not valid" \
	"$HEARTH" client add --data "$D" --id x2 --role admin --genkey --out "$O"
t_fails "a client cannot take a device's id" "$HEARTH" client add --data "$D" --id h1 --role integration --genkey --out "$T/o2"
t_fails "a device cannot take a client's id" "$HEARTH" device add --data "$D" --id ha --model heater --genkey --out "$T/o3"
t_out "... and is told why" "the id 'ha' already exists" "$HEARTH" device add --data "$D" --id ha --model heater --genkey --out "$T/o3"
t_out "client list shows it" "^ha +integration +active" "$HEARTH" client list --data "$D"
t_eq "device list does not" "" "$("$HEARTH" device list --data "$D" | awk '$1 == "ha"')"
t_eq "the addition is audited" 2 "$(sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM audit_log WHERE action = 'client.add'")"

# --- the stream ----------------------------------------------------------------------------------
START=$(( ($(date +%s) / 86400 + 1) * 86400 ))   # the next midnight (UTC): after the certificates' issue
CLOCK=$T/clock
set_clock() { date -u -d "@$1" '+%Y-%m-%d %H:%M:%S' > "$CLOCK"; }
set_clock $((START + 600))
serve_fake() {
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 LD_PRELOAD=$FAKELIB \
	FAKETIME_TIMESTAMP_FILE=$CLOCK FAKETIME_NO_CACHE=1 FAKETIME_DONT_FAKE_MONOTONIC=1 start_hearth "$D"
}
serve_fake || { nok "hearth serve starts under libfaketime"; exit 1; }

t_raw "the integration may subscribe to hearth/v1/+/telemetry" "body=000101" \
	ha connect:ha::clean expect:CONNACK:0000 subscribe:hearth/v1/+/telemetry:1 expect:SUBACK:000101
t_raw "... and to one device's telemetry" "body=000101" \
	ha connect:ha::clean expect:CONNACK:0000 subscribe:hearth/v1/h1/telemetry:1 expect:SUBACK:000101
for f in 'hearth/v1/#' 'hearth/v1/+/status' 'hearth/v1/h1/#' 'hearth/v1/+/manifest/#' '#' 'hearth/v1/+/+'; do
	t_raw "... but not to $f" "body=000180" ha connect:ha::clean expect:CONNACK:0000 subscribe:"$f":1 expect:SUBACK:000180
done
t_raw "a publish from the integration closes its connection" "closed" \
	ha connect:ha::clean expect:CONNACK:0000 publish:hearth/v1/h1/telemetry:x:1 expect_close
t_raw "... even to a topic named after itself" "closed" \
	ha connect:ha::clean expect:CONNACK:0000 publish:hearth/v1/ha/status:x:1 expect_close
t_raw "an integration cannot set a will" "body=0005" \
	ha "$(connect_will ha hearth/v1/ha/ack x)" expect:CONNACK:0005
t_raw "a device cannot subscribe to every device's telemetry" "body=000180" \
	h1 connect:h1::clean expect:CONNACK:0000 subscribe:hearth/v1/+/telemetry:1 expect:SUBACK:000180
t_raw "a device's will on its telemetry topic is refused (it would bypass minimization)" "body=0005" \
	h1 "$(connect_will h1 hearth/v1/h1/telemetry x)" expect:CONNACK:0005
t_raw "... while one on its status topic is accepted" "body=0000" \
	h1 "$(connect_will h1 hearth/v1/h1/status gone)" expect:CONNACK:0000

mosq_sub ha -i ha -t 'hearth/v1/+/telemetry' -q 1 -v -W 60 > "$T/ha.out" 2>"$T/ha.err" &
SUB=$!; BG_PIDS="$BG_PIDS $SUB"
t "the integration client connects" wait_for 10 grep -q "ha (.*): integration client connected" "$HLOG"

pub() { mosq_pub "$1" -i "$1" -t "hearth/v1/$1/telemetry" -q 1 "${@:2}"; }
t "h1 sends telemetry with sensitive sentinels" pub h1 -m \
	'{"temperature": 21.3, "setpoint": 21.0, "humidity": 41, "error_code": "E7", "co2_ppm": 987654,
	  "Motion": "SENTINEL-7f3a", "wifi": {"ssid": "SENTINEL-ssid"}, "power_w": 55511.5}'
t "h1 sends a second sample" pub h1 -m '{"temperature": 22.2, "occupancy": true}'
t "h2 sends telemetry with the retain flag" pub h2 -r -m '{"temperature": 19.9, "setpoint": 20, "lux": 424242}'
# Nothing is published while the bucket is open: a record per message would time each one.
sleep 2
t_eq "nothing reaches the integration while the hour is open" "" "$(cat "$T/ha.out")"
set_clock $((START + 3600 + 1))
t "when the hour closes, a record per device arrives" wait_for 10 sh -c "[ \$(wc -l < '$T/ha.out') -ge 2 ]"
sleep 1
t_eq "exactly one per device" 2 "$(wc -l < "$T/ha.out")"
rec() { sed -n "s|^hearth/v1/$1/telemetry ||p" "$T/ha.out"; }
t_eq "h1's record: the hourly means and last error code, rounded, bucket-aligned" \
	"h1 $START 3600 mean:21.75:2 mean:21:1 last:E7:1" \
	"$(rec h1 | python3 -c '
import json, sys
r = json.load(sys.stdin)
v = r["values"]
print(r["device"], r["bucket_start"], r["bucket_s"],
      *["%s:%g:%d" % (v[k]["agg"], v[k]["value"], v[k]["n"]) if k != "error_code" else "%s:%s:%d" % (v[k]["agg"], v[k]["value"], v[k]["n"]) for k in ("temperature", "setpoint", "error_code")])')"
t_eq "it holds nothing else (humidity waits for its weekly bucket; dropped fields never appear)" \
	"bucket_s bucket_start device values | error_code setpoint temperature" \
	"$(rec h1 | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(" ".join(sorted(r)), "|", " ".join(sorted(r["values"])))')"
t_eq "h2's record" "h2 20 20" "$(rec h2 | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(r["device"], "%g" % r["values"]["temperature"]["value"], "%g" % r["values"]["setpoint"]["value"])')"
t_eq "the records match what the store holds (telemetry query)" 3 \
	"$("$HEARTH" telemetry query --data "$D" --device h1 | grep -cE 'temperature +mean +21.75 \(n=2\)|setpoint +mean +21 \(n=1\)|error_code +last +E7 \(n=1\)')"
for s in 987654 SENTINEL-7f3a SENTINEL-ssid 55511 occupancy 424242 41; do
	t_eq "sentinel $s never reaches the integration" 0 "$(grep -c -- "$s" "$T/ha.out")"
done
t_eq "a retained raw telemetry payload is not kept" 0 \
	"$(sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM retained WHERE topic LIKE '%/telemetry'")"

# Buckets that are open across a restart are published when they close; closed ones are not
# published twice.
t "h1 sends in the next hour" pub h1 -m '{"temperature": 18.1}'
stop_hearth
kill "$SUB" 2>/dev/null; wait "$SUB" 2>/dev/null
serve_fake || { nok "hearth restarts"; exit 1; }
mosq_sub ha -i ha -t 'hearth/v1/h1/telemetry' -q 1 -v -W 60 > "$T/ha2.out" 2>"$T/ha2.err" &
SUB=$!; BG_PIDS="$BG_PIDS $SUB"
t "the integration client reconnects" wait_for 10 sh -c "grep -c 'ha (.*): integration client connected' '$HLOG' | grep -q 1"
set_clock $((START + 7200 + 1))
t "after the restart, the next hour's record arrives" wait_for 10 grep -q '"temperature":{"agg":"mean","value":18' "$T/ha2.out"
sleep 1
t_eq "and only it" 1 "$(wc -l < "$T/ha2.out")"
t_eq "its bucket is the second hour" "$((START + 3600))" "$(sed 's/^[^ ]* //' "$T/ha2.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bucket_start"])')"

# Revocation: the live connection closes, the next one is refused, the CRL lists it.
serial=$(openssl x509 -in "$O/ha.crt" -noout -serial | cut -d= -f2)
# On the server's clock: it looks for revocations made since its own last look.
t_out "client revoke" "client ha revoked; 1 certificate" env LD_PRELOAD="$FAKELIB" FAKETIME_TIMESTAMP_FILE="$CLOCK" \
	FAKETIME_NO_CACHE=1 ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
	"$HEARTH" client revoke --data "$D" --id ha
t "the live integration connection is closed" wait_for 5 grep -q "ha (.*): closed: device revoked" "$HLOG"
t_fails "its next connection is refused" raw ha connect:ha::clean expect:CONNACK:0000
t_out "the CRL lists its certificate" "Serial Number: $serial" openssl crl -in "$D/certs/crl.pem" -noout -text
t_fails "revoking it again says so" "$HEARTH" client revoke --data "$D" --id ha
t_out "client list shows it revoked" "^ha +integration +revoked" "$HEARTH" client list --data "$D"
t_fails "an unknown client cannot be revoked" "$HEARTH" client revoke --data "$D" --id nobody
kill "$SUB" 2>/dev/null; wait "$SUB" 2>/dev/null
stop_hearth
t_eq "the database is sound" ok "$(sqlite3 "$D/hearth.db" 'PRAGMA integrity_check')"
