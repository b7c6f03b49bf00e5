# Other writers beside steady publishing: under QoS 1 load the endpoint's group commits follow each
# other with almost no gap, and SQLite's write lock is not fair, so a revocation from the CLI or the
# REST API used to wait out its busy timeout and fail with "database is locked". Now a writer
# announces itself (store_writers_waiting) and the endpoint lets it in. The load comes from
# bench/loadgen ($LOADGEN): 50 devices over TLS with client certificates, 40 QoS 1 messages in
# flight each, as fast as PUBACKs come (a handful of mosquitto_pub processes cannot keep the
# endpoint busy enough on two cores to show the problem). What is checked is checked with the CLI,
# curl and sqlite3.
. "$(dirname "$0")/lib.sh"
D=$T/data
O=$T/out
loadgen_fleet p 50 || exit 1
for id in v1 v2 v3 v4; do
	"$HEARTH" device add --data "$D" --id $id --model heater --genkey --out "$O" >/dev/null 2>&1 || nok "add $id"
done
start_hearth "$D" || { nok "hearth serve starts"; exit 1; }
TOKEN=$(new_token ops admin)

stored() { api "$TOKEN" GET /metrics | awk '$1 == "hearth_telemetry_messages_total" { print $2 }'; }
# Bounded: 40 s of publishing (the cleanup stops it by its PID if the test ends first).
start_bg "$LOADGEN" --port "$PORT" --certdir "$O" --ids "$T/ids" --publish --clients 50 --window 40 \
	--devices 50 --duration 40 --timeout 60
# /metrics is a snapshot taken every 250 ms.
t "the publishers' messages are being stored" wait_for 30 sh -c "[ \"\$(curl -sS --max-time 5 --cacert '$D/certs/ca.pem' \
	-H 'Authorization: Bearer $TOKEN' https://127.0.0.1:$API_PORT/metrics |
	awk '\$1 == \"hearth_telemetry_messages_total\" { print \$2 }')\" -gt 5000 ]"
before=$(stored)

t "a CLI revocation gets the write lock while devices publish" "$HEARTH" device revoke --data "$D" --id v1
t "... and another" "$HEARTH" device revoke --data "$D" --id v2
t_out "a REST revocation too" "^HTTP 200$" api "$TOKEN" POST /api/v1/devices/v3/revoke
t "a CLI device add too" "$HEARTH" device add --data "$D" --id n1 --model heater --genkey --out "$O"
sleep 0.6
after=$(stored)
t "the publishers kept publishing meanwhile (stored $before, then $after)" test "${after:-0}" -gt $(( ${before:-0} + 1000 ))
t_eq "v1 v2 v3 are revoked, v4 is not" "revoked revoked revoked active" \
	"$(for v in v1 v2 v3 v4; do sqlite3 "$D/hearth.db" "SELECT status FROM devices WHERE id = '$v'"; done | tr '\n' ' ' | sed 's/ $//')"
t_fails "no 'database is locked' in the server's log" grep -q "database is locked" "$HLOG"
for p in $BG_PIDS; do [ "$p" = "$HPID" ] || kill "$p" 2>/dev/null; done
stop_hearth
t_eq "the database is sound" ok "$(sqlite3 "$D/hearth.db" 'PRAGMA integrity_check')"
