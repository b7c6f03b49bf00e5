# Telemetry ingest: minimized before storage, sensitive fields never reach the disk, and no
# acknowledged message is lost to kill -9.
. "$(dirname "$0")/lib.sh"
D=$T/data
O=$T/out
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
"$HEARTH" model set --data "$D" --model heater --policy schema/policies/smart-heater.json >/dev/null 2>&1 || nok "model set"
for id in h1 h2; do
	"$HEARTH" device add --data "$D" --id $id --model heater --genkey --out "$O" >/dev/null 2>&1 || nok "add $id"
done
"$HEARTH" device add --data "$D" --id bare --model nopolicy --genkey --out "$O" >/dev/null 2>&1 || nok "add bare"
start_hearth "$D" || { nok "hearth serve starts"; exit 1; }

pub() { mosq_pub "$1" -i "$1" -t "hearth/v1/$1/telemetry" -m "$2" -q 1; }
# Sentinel values in sensitive fields, in every disguise the issue lists.
t "telemetry with sensitive fields is acknowledged" pub h1 \
	'{"temperature": 21.3, "setpoint": 21.0, "humidity": 41, "co2_ppm": 987654, "Motion": "SENTINEL-7f3a",
	  "env": {"\u0050IR": "SENTINEL-b2c4", "lux": 424242}, "wifi": {"rssi_dbm": -31337}, "power_w": 55511.5}'
t "a second sample" pub h1 '{"temperature": 21.8, "setpoint": 21.0, "humidity": 44}'
t "not JSON is acknowledged and dropped whole" pub h1 'SENTINEL-c0ffee not json'
t "a model without a policy stores only last-seen" pub bare '{"temperature": 20.0, "motion": "SENTINEL-9d9d"}'

q=$("$HEARTH" telemetry query --data "$D" --device h1)
echo "$q" > "$T/query"
t "temperature is stored as an hourly mean, rounded to 0.5 (21.5 and 22 -> 21.75)" grep -Eq "3600s temperature +mean +21.75 \(n=2\)" "$T/query"
t "humidity is rounded to 5 % steps (40 and 45 -> 42.5)" grep -Eq "humidity +mean +42.5 \(n=2\)" "$T/query"
t "bucket starts are whole hours" sh -c "! grep -Ev 'T[0-9]{2}:00:00Z' '$T/query' | grep -q ."
t_eq "nothing else was stored for h1" "humidity setpoint temperature" "$(echo "$q" | awk '{print $3}' | sort -u | tr '\n' ' ' | sed 's/ $//')"
t_eq "nothing was stored for the device without a policy" "" "$("$HEARTH" telemetry query --data "$D" --device bare)"
t "its last-seen time is kept, coarsened to the hour" test "$(sqlite3 "$D/hearth.db" "SELECT bucket_start % 3600 FROM last_seen WHERE device_id = 'bare'")" = 0
"$HEARTH" telemetry dropped --data "$D" > "$T/dropped"
t_out "dropped fields are counted by name: co2" "^heater +co2 +yes +1" cat "$T/dropped"
t_out "... motion" "^heater +motion +yes +1" cat "$T/dropped"
t_out "... a \\u-escaped PIR inside an object" "^heater +env.pir +yes +1" cat "$T/dropped"
t_out "... the invalid payload" "^heater +\(invalid payload\) +no +1" cat "$T/dropped"

# The sentinel scan: no file in the data directory (database, WAL, SHM, keys) nor the server's
# log holds any of the values a policy dropped.
stop_hearth
for s in 987654 SENTINEL-7f3a SENTINEL-b2c4 424242 31337 55511 SENTINEL-c0ffee SENTINEL-9d9d; do
	hits=$(grep -rlaF -- "$s" "$D" "$HLOG" 2>/dev/null | wc -l)
	t_eq "sentinel $s: no file holds it" 0 "$hits"
done
t_eq "the database is sound" ok "$(sqlite3 "$D/hearth.db" 'PRAGMA integrity_check')"

# kill -9 at random moments: every acknowledged message is counted in the store (group commit).
acked=0
for round in 1 2 3; do
	start_hearth "$D" || { nok "restart $round"; break; }
	( i=0; while [ $i -lt 400 ]; do
		mosq_pub h2 -i h2 -t hearth/v1/h2/telemetry -m '{"temperature": 20}' -q 1 2>/dev/null && echo ok
		i=$((i + 1)); done ) > "$T/acks.$round" &
	loader=$!
	sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.1f", 1 + (r % 20) / 10 }')"
	kill -9 "$HPID"; wait "$HPID" 2>/dev/null
	kill "$loader" 2>/dev/null; wait "$loader" 2>/dev/null
	acked=$((acked + $(grep -c ok "$T/acks.$round")))
done
stored=$(sqlite3 "$D/hearth.db" "SELECT COALESCE(SUM(n), 0) FROM telemetry WHERE device_id = 'h2' AND field = 'temperature'")
t "some messages were acknowledged across the kills ($acked)" test "$acked" -gt 0
# A message may be stored and then killed before its PUBACK left: stored >= acked, never less.
t "no acknowledged message was lost to kill -9 (stored $stored >= acked $acked)" test "$stored" -ge "$acked"
t "... and none was stored twice beyond the in-flight one per kill" test "$stored" -le $((acked + 3))
t_eq "the database is sound after the kills" ok "$(sqlite3 "$D/hearth.db" 'PRAGMA integrity_check')"
# Retention: rows past their retention are deleted by the server on its hourly maintenance (and
# at start), and the WAL is emptied so it keeps no superseded aggregates.
old=$(( $(date +%s) / 3600 * 3600 - 10 * 86400 ))
sqlite3 "$D/hearth.db" "INSERT INTO telemetry VALUES ('h1', 'temperature', $old, 3600, 'mean', 1, 20.0, NULL, 1)"
start_hearth "$D"
t "the server deletes telemetry past its retention" wait_for 10 grep -q "retention: 1 telemetry rows past their retention deleted" "$HLOG"
t_eq "the expired row is gone" 0 "$(sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM telemetry WHERE bucket_start = $old")"
t_eq "recent rows stay" 1 "$(sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM telemetry WHERE device_id = 'h2'")"
t_eq "the WAL was emptied (TRUNCATE checkpoint)" 0 "$(stat -c %s "$D/hearth.db-wal" 2>/dev/null || echo 0)"
stop_hearth
# A large expiry goes in chunks over several ticks (on the ticker thread, not the event loop), and
# all of it goes: 120,001 expired rows are more than one tick deletes.
sqlite3 "$D/hearth.db" "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 120000)
	INSERT INTO telemetry SELECT 'h1', 'f' || i, $old, 3600, 'mean', 1, 1.0, NULL, 1 FROM c"
start_hearth "$D"
t "a large expiry is done, all of it" wait_for 60 grep -q "retention: 120001 telemetry rows past their retention deleted" "$HLOG"
t_eq "... no expired row is left" 0 "$(sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM telemetry WHERE bucket_start = $old")"
t_eq "... recent rows stay" 1 "$(sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM telemetry WHERE device_id = 'h2'")"
stop_hearth
# Decommissioning a device deletes what was stored about it, and revokes it.
h1_serial=$(openssl x509 -in "$O/h1.crt" -noout -serial | cut -d= -f2)
sqlite3 "$D/hearth.db" "INSERT INTO retained VALUES ('hearth/v1/h1/status', x'6f6e', 1, 0), ('hearth/v1/h1x/status', x'6f6e', 1, 0)"
start_hearth "$D" || nok "restart before decommission"
t "decommission succeeds" "$HEARTH" device decommission --data "$D" --id h1
t "the running server drops its retained message from memory too" \
	wait_for 5 grep -q "h1: decommissioned; its 1 retained message(s) dropped from memory" "$HLOG"
stop_hearth
t_eq "its telemetry is gone" 0 "$(sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM telemetry WHERE device_id = 'h1'")"
t_eq "its last-seen time is gone" 0 "$(sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM last_seen WHERE device_id = 'h1'")"
t_eq "its retained messages are gone, not another device's" "hearth/v1/h1x/status" "$(sqlite3 "$D/hearth.db" "SELECT topic FROM retained WHERE topic LIKE 'hearth/v1/h1%'")"
t_eq "other devices keep theirs" 1 "$(sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM telemetry WHERE device_id = 'h2'")"
t_out "it is listed as decommissioned" "^h1 +heater +decommissioned" "$HEARTH" device list --data "$D"
t_out "its certificate is in the CRL" "Serial Number: $h1_serial" openssl crl -in "$D/certs/crl.pem" -noout -text
t_out "decommissioning twice says so" "already decommissioned" "$HEARTH" device decommission --data "$D" --id h1
t_fails "no sanitizer report" grep -Eq 'Sanitizer|runtime error:' "$T"/serve.*.log
