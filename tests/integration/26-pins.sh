# Pin rotation gated on readiness: the pin set (current, next, backup endpoint keys) goes to every
# device as a signed manifest; devices acknowledge it; `hearth pins switch` refuses while an active
# device has not, names it, and once allowed moves the endpoint to the announced key without
# dropping live connections; a fresh next key is announced and the old key leaves the set.
. "$(dirname "$0")/lib.sh"
D=$T/data
O=$T/out
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
for id in p1 p2 p3; do
	"$HEARTH" device add --data "$D" --id $id --model m --genkey --out "$O" >/dev/null 2>&1 || nok "add $id"
done
# spki_pin PEM-PUBKEY-COMMAND...: the HPKP pin of what the command prints (a PEM public key).
pin_of_pub() { openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64 | sed 's|^|sha256/|'; }
served_pin() { timeout 10 openssl s_client -connect 127.0.0.1:"$PORT" -CAfile "$D/certs/ca.pem" -cert "$O/p1.crt" \
	-key "$O/p1.key" </dev/null 2>/dev/null | openssl x509 -noout -pubkey | pin_of_pub; }
body_of() { "$HEARTH" manifest verify --data "$D" --envelope "$1" 2>/dev/null; }
field() { python3 -c 'import json,sys; v=json.load(sys.stdin)[sys.argv[1]]; print(" ".join(v) if isinstance(v, list) else v)' "$1"; }

start_hearth "$D" || { nok "hearth serve starts"; exit 1; }
for id in p1 p2 p3; do
	mosq_pub $id -i $id -t hearth/v1/$id/telemetry -m '{}' -q 1 || nok "$id reports"
done
t_fails "status before any pin set was announced says so" "$HEARTH" pins status --data "$D"
t_out "show: the current pin is the served key's" "^current $(served_pin | sed 's|[/+]|.|g')$" "$HEARTH" pins show --data "$D"
OLD=$(served_pin)
t_out "rotate makes the next and backup keys and announces the set" "pin set version 1 announced" \
	"$HEARTH" pins rotate --data "$D"
t "the new keys are 0600" test "$(stat -c %a "$D/keys/endpoint-next.key")" = 600 -a "$(stat -c %a "$D/keys/endpoint-backup.key")" = 600
NEXT=$(openssl pkey -in "$D/keys/endpoint-next.key" -pubout | pin_of_pub)
BACKUP=$(openssl pkey -in "$D/keys/endpoint-backup.key" -pubout | pin_of_pub)
for id in p1 p2; do
	mosq_sub $id -i $id -t "hearth/v1/$id/manifest/pins" -C 1 -W 10 > "$T/$id.env"
done
t "p1 receives the pin set and it verifies" sh -c "'$HEARTH' manifest verify --data '$D' --envelope '$T/p1.env' >/dev/null 2>&1"
t_eq "it lists current, next and backup (computed here with openssl)" "$OLD $NEXT $BACKUP" "$(body_of "$T/p1.env" | field pins)"
t_eq "it is addressed to every device" "*" "$(body_of "$T/p1.env" | field device)"

ack() { mosq_pub "$1" -i "$1" -t "hearth/v1/$1/ack" -q 1 -m "{\"type\": \"pins\", \"version\": $2, \"status\": \"applied\"}"; }
t "p1 acknowledges" ack p1 1
t "p2 acknowledges" ack p2 1
"$HEARTH" pins status --data "$D" > "$T/status"
t_out "status: 2 of 3 active devices acknowledged" "^pin set version 1: 2 of 3 active devices acknowledged it" cat "$T/status"
t_out "... and names the one that did not" "not acknowledged: p3" cat "$T/status"
t_fails "switch refuses while p3 would be stranded" "$HEARTH" pins switch --data "$D"
t_out "... saying why" "refused: 1 device\(s\) above would be stranded" "$HEARTH" pins switch --data "$D"
t_fails "--force without --yes is refused when nobody can confirm" "$HEARTH" pins switch --data "$D" --force </dev/null
t_eq "nothing moved" "$OLD" "$(served_pin)"

# A connection made before the switch carries on after it.
RAW_TIMEOUT=30 raw p2 connect:p2:60:clean expect:CONNACK sleep:9 pingreq expect:PINGRESP > "$T/live.out" 2>&1 &
LIVE=$!
sleep 1
t_out "with the threshold at 60 %, the switch goes ahead" "switched" "$HEARTH" pins switch --data "$D" --threshold 60
t "the running server picks up the new key" wait_for 10 grep -q "endpoint certificate reloaded" "$HLOG"
t_eq "it now serves the key announced as next" "$NEXT" "$(served_pin)"
t "the new certificate verifies against the CA" openssl verify -CAfile "$D/certs/ca.pem" "$D/certs/endpoint.crt"
wait "$LIVE"
t "the connection from before the switch carried on" test $? -eq 0
t_out "devices connect as before" "received PUBACK" mosq_pub p1 -i p1 -t hearth/v1/p1/status -m up -q 1 -d
mosq_sub p1 -i p1 -t "hearth/v1/p1/manifest/pins" -C 1 -W 10 > "$T/p1v2.env"
t_eq "the new pin set: the old next is current, a fresh next, the same backup" \
	"$NEXT $(openssl pkey -in "$D/keys/endpoint-next.key" -pubout | pin_of_pub) $BACKUP" "$(body_of "$T/p1v2.env" | field pins)"
t_fails "the old key left the set" grep -qF "$OLD" <(body_of "$T/p1v2.env")
t_eq "its version is 2" 2 "$(body_of "$T/p1v2.env" | field version)"
t "the old key is kept aside, 0600" test "$(stat -c %a "$D/keys/endpoint-retired.key")" = 600
t_out "the switch is audited" "endpoint.rekey" sqlite3 "$D/hearth.db" "SELECT action FROM audit_log"
t_out "status now counts acks of the new set" "pin set version 2: 0 of 3" "$HEARTH" pins status --data "$D"

# The same over REST.
ADMIN=$(new_token ops admin)
READ=$(new_token viewer read)
t_out "GET /api/v1/pins: version, pins, who has not acknowledged" \
	'"version":2.*"active":3,"acknowledged":0,"not_acknowledged":\["p1","p2","p3"\]' api "$READ" GET /api/v1/pins
t_out "a read token cannot switch (403)" "HTTP 403" api "$READ" POST /api/v1/pins/switch
api "$ADMIN" POST /api/v1/pins/switch > "$T/sw1"
t_out "switching with nobody ready is refused (409 not_ready)" '"code":"not_ready"' cat "$T/sw1"
t_out "... with the status" "HTTP 409" cat "$T/sw1"
t_out "a bad threshold is refused (422)" "HTTP 422" api "$ADMIN" POST /api/v1/pins/switch \
	-H 'Content-Type: application/json' -d '{"threshold": 0}'
NEXT2=$(openssl pkey -in "$D/keys/endpoint-next.key" -pubout | pin_of_pub)
api "$ADMIN" POST /api/v1/pins/switch -H 'Content-Type: application/json' -d '{"force": true}' > "$T/sw2"
t_out "force switches and names the stranded devices" '"stranded":\["p1","p2","p3"\]' cat "$T/sw2"
t "the server serves the key announced in version 2" wait_for 10 sh -c "[ \"\$(timeout 10 openssl s_client -connect 127.0.0.1:$PORT -CAfile '$D/certs/ca.pem' -cert '$O/p1.crt' -key '$O/p1.key' </dev/null 2>/dev/null | openssl x509 -noout -pubkey | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)\" = '${NEXT2#sha256/}' ]"
t_out "rotate over REST announces a new set (201)" '"version":4.*HTTP 201' sh -c "api() { curl -sS --max-time 10 --cacert '$D/certs/ca.pem' -H 'Authorization: Bearer $ADMIN' -X POST -w ' HTTP %{http_code}' https://127.0.0.1:$API_PORT/api/v1/pins/rotate; }; api"
stop_hearth
t_fails "no sanitizer report" grep -Eq 'Sanitizer|runtime error:' "$T"/serve.*.log
