# Manifest delivery and acknowledgement: a manifest recorded in the store by any process (here with
# sqlite3, as the CLI and REST do in their own transactions) is published by the running server,
# retained, on hearth/v1/<id>/manifest/<type> of every active device it addresses; a device gets it
# on subscribe and at once when it is new, can fetch it over HTTPS with its certificate, and its
# acks on hearth/v1/<id>/ack are recorded.
. "$(dirname "$0")/lib.sh"
D=$T/data
O=$T/out
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
for id in a1 a2; do
	"$HEARTH" device add --data "$D" --id $id --model alpha --genkey --out "$O" >/dev/null 2>&1 || nok "add $id"
done
"$HEARTH" device add --data "$D" --id b1 --model beta --genkey --out "$O" >/dev/null 2>&1 || nok "add b1"
"$HEARTH" device add --data "$D" --id gone --model alpha --genkey --out "$O" >/dev/null 2>&1 || nok "add gone"
"$HEARTH" device revoke --data "$D" --id gone >/dev/null 2>&1 || nok "revoke gone"
issue() { # TARGET TYPE VERSION ENVELOPE
	sqlite3 -cmd ".timeout 5000" "$D/hearth.db" "INSERT INTO manifests (target, type, version, issued_at, expires_at, envelope)
		VALUES ('$1', '$2', $3, strftime('%s','now'), strftime('%s','now') + 86400, '$4')"
}
issue model:alpha pins 1 '{"m":"pins-1"}'
start_hearth "$D" || { nok "hearth serve starts"; exit 1; }
t "a manifest issued while the server was down is published when it starts" \
	wait_for 10 grep -q "manifest pins for model:alpha published to 2 device(s)" "$HLOG"
t_eq "a device gets it on subscribe, retained" 'hearth/v1/a1/manifest/pins {"m":"pins-1"}' \
	"$(mosq_sub a1 -i a1 -t 'hearth/v1/a1/manifest/#' -C 1 -W 5 -v)"
t_eq "every device of the model has it" 'hearth/v1/a2/manifest/pins {"m":"pins-1"}' \
	"$(mosq_sub a2 -i a2 -t 'hearth/v1/a2/manifest/#' -C 1 -W 5 -v)"
t_eq "a device of another model does not" "" "$(mosq_sub b1 -i b1 -t 'hearth/v1/b1/manifest/#' -C 1 -W 2 -v 2>/dev/null)"
t_eq "nor does a revoked device's topic" 0 \
	"$(sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM retained WHERE topic = 'hearth/v1/gone/manifest/pins'")"

# A live subscriber gets a new one at once.
mosq_sub a1 -i a1 -t 'hearth/v1/a1/manifest/#' -q 1 -v -W 20 > "$T/live" 2>&1 &
SUB=$!; BG_PIDS="$BG_PIDS $SUB"
wait_for 10 grep -q 'pins-1' "$T/live"
issue device:a1 pins 2 '{"m":"pins-2"}'
t "a new manifest reaches the live subscriber at once" wait_for 5 grep -q 'pins-2' "$T/live"
kill "$SUB" 2>/dev/null; wait "$SUB" 2>/dev/null
t_eq "the retained one is now the newest" 'hearth/v1/a1/manifest/pins {"m":"pins-2"}' \
	"$(mosq_sub a1 -i a1 -t 'hearth/v1/a1/manifest/pins' -C 1 -W 5 -v)"
t_eq "a2 keeps the model's version 1" 'hearth/v1/a2/manifest/pins {"m":"pins-1"}' \
	"$(mosq_sub a2 -i a2 -t 'hearth/v1/a2/manifest/pins' -C 1 -W 5 -v)"
# A device added after the model's manifest was published gets it on its first subscribe too.
"$HEARTH" device add --data "$D" --id late --model alpha --genkey --out "$O" >/dev/null 2>&1 || nok "add late"
t_eq "a device enrolled later gets the model's newest manifest on subscribe" 'hearth/v1/late/manifest/pins {"m":"pins-1"}' \
	"$(mosq_sub late -i late -t 'hearth/v1/late/manifest/pins' -C 1 -W 5 -v)"

# Over HTTPS with the device's certificate.
dev_get() { api "" GET "/api/v1/device/manifests/$2" --cert "$O/$1.crt" --key "$O/$1.key"; }
t_out "a device fetches its newest manifest over HTTPS (mTLS)" '^\{"m":"pins-2"\}$' dev_get a1 pins
t_out "another device gets its own" '^\{"m":"pins-1"\}$' dev_get a2 pins
t_out "none of a type yet: 404" "HTTP 404" dev_get a1 firmware
t_out "an unknown type: 404" "HTTP 404" dev_get a1 secrets
t_out "without a device certificate: 401" "HTTP 401" api "" GET /api/v1/device/manifests/pins

# Acks.
ack() { mosq_pub "$1" -i "$1" -t "hearth/v1/$1/ack" -q 1 -m "$2"; }
t "a1 acknowledges version 2" ack a1 '{"type": "pins", "version": 2, "status": "applied"}'
t "a2 acknowledges version 1" ack a2 '{"type": "pins", "version": 1, "status": "applied"}'
t "a malformed ack is still acknowledged (PUBACK)" ack a2 '{"type": "pins", "version": "x", "status": "applied"}'
t "... as is one with an unknown status" ack a2 '{"type": "pins", "version": 1, "status": "pwned"}'
t "... or a duplicate key" ack a2 '{"type": "pins", "type": "keys", "version": 1, "status": "applied"}'
t_eq "the acks are recorded per device, type and version" "a1|pins|2|applied a2|pins|1|applied" \
	"$(sqlite3 "$D/hearth.db" "SELECT device_id, type, version, status FROM manifest_acks ORDER BY device_id" | tr '\n' ' ' | sed 's/ $//')"
t "a later status replaces the earlier" ack a1 '{"type": "pins", "version": 2, "status": "rejected"}'
t_eq "... for that version" "rejected" \
	"$(sqlite3 "$D/hearth.db" "SELECT status FROM manifest_acks WHERE device_id = 'a1' AND version = 2")"
# hearth manifest issue: signed with the manifest key, versioned, recorded, delivered.
echo '{"url": "https://fw.example/a-2.bin", "sha256": "00", "size": 1}' > "$T/fields.json"
t_out "manifest issue signs and records a firmware manifest for a1" "manifest firmware version 1 for device:a1 issued" \
	"$HEARTH" manifest issue --data "$D" --device a1 --type firmware --fields "$T/fields.json"
mosq_sub a1 -i a1 -t 'hearth/v1/a1/manifest/firmware' -C 1 -W 10 > "$T/fw.env"
t "the device receives it" test -s "$T/fw.env"
t "it verifies against the manifest key" sh -c "'$HEARTH' manifest verify --data '$D' --envelope '$T/fw.env' > '$T/fw.body' 2>/dev/null"
t_eq "its body: the fields given, and type, device, version, issued, expires set by hearth" \
	"device=a1 type=firmware version=1 url=https://fw.example/a-2.bin expires-issued=2592000" \
	"$(python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); print("device=%s type=%s version=%d url=%s expires-issued=%d" % (b["device"], b["type"], b["version"], b["url"], b["expires"] - b["issued"]))' "$T/fw.body")"
t_out "a second one gets the next version" "firmware version 2 for model:beta" \
	"$HEARTH" manifest issue --data "$D" --model beta --type firmware
t_out "and reaches b1, a device of that model" '"payloadType":"application/vnd.hearth.manifest\+json"' \
	mosq_sub b1 -i b1 -t hearth/v1/b1/manifest/firmware -C 1 -W 10
echo '{"version": 99}' > "$T/bad.json"
t_fails "fields may not set what hearth sets (version)" "$HEARTH" manifest issue --data "$D" --device a1 --type firmware --fields "$T/bad.json"
t_fails "an unknown device is refused" "$HEARTH" manifest issue --data "$D" --device nobody --type pins
t_fails "a revoked device is refused" "$HEARTH" manifest issue --data "$D" --device gone --type pins
t_fails "an unknown type is refused" "$HEARTH" manifest issue --data "$D" --device a1 --type secrets
t_eq "issues are audited" 2 "$(sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM audit_log WHERE action = 'manifest.issue'")"
# A manifest signed elsewhere (the offline ceremony) is uploaded: checked, recorded, delivered.
now=$(date +%s)
printf '{"type":"firmware","device":"a2","version":3,"issued":%d,"expires":%d,"url":"x"}' "$now" $((now + 3600)) > "$T/off.json"
"$HEARTH" manifest sign --data "$D" --body "$T/off.json" --out "$T/off.env" >/dev/null 2>&1 || nok "sign offline"
t_out "upload records a manifest signed elsewhere" "manifest firmware version 3 for device:a2 recorded" \
	"$HEARTH" manifest upload --data "$D" --envelope "$T/off.env"
t_out "and a2 receives it" '"payloadType"' mosq_sub a2 -i a2 -t hearth/v1/a2/manifest/firmware -C 1 -W 10
t_out "the same version again is refused (versions only grow)" "versions only grow" \
	"$HEARTH" manifest upload --data "$D" --envelope "$T/off.env"
printf '{"type":"firmware","device":"a2","version":9,"issued":%d,"expires":%d}' $((now - 7200)) $((now - 3600)) > "$T/old.json"
"$HEARTH" manifest sign --data "$D" --body "$T/old.json" --out "$T/old.env" >/dev/null 2>&1 || nok "sign expired"
t_out "an expired one is refused" "refused: expired" "$HEARTH" manifest upload --data "$D" --envelope "$T/old.env"
"$HEARTH" init --data "$T/other" >/dev/null 2>&1
printf '{"type":"firmware","device":"a2","version":10,"issued":%d,"expires":%d}' "$now" $((now + 3600)) > "$T/foreign.json"
"$HEARTH" manifest sign --data "$T/other" --body "$T/foreign.json" --out "$T/foreign.env" >/dev/null 2>&1 || nok "sign foreign"
t_out "one signed by another key is refused" "refused" "$HEARTH" manifest upload --data "$D" --envelope "$T/foreign.env"
sed 's/"payload":"/"payload":"A/' "$T/off.env" > "$T/tampered.env"
t_fails "a tampered one is refused" "$HEARTH" manifest upload --data "$D" --envelope "$T/tampered.env"
printf '{"type":"firmware","device":"nobody","version":11,"issued":%d,"expires":%d}' "$now" $((now + 3600)) > "$T/nobody.json"
"$HEARTH" manifest sign --data "$D" --body "$T/nobody.json" --out "$T/nobody.env" >/dev/null 2>&1
t_out "one for no known device or model is refused" "no device or model 'nobody'" \
	"$HEARTH" manifest upload --data "$D" --envelope "$T/nobody.env"
t_eq "uploads are audited" 1 "$(sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM audit_log WHERE action = 'manifest.upload'")"
stop_hearth
t_eq "the delivery cursor reached the last manifest" 5 "$(sqlite3 "$D/hearth.db" "SELECT seq FROM manifest_delivery")"
t_fails "no sanitizer report" grep -Eq 'Sanitizer|runtime error:' "$T"/serve.*.log
