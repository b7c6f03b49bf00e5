# A device's whole life over the REST API: an operator sets a model's policy and makes a one-time
# enrollment token; the device makes its own key and CSR (openssl), enrolls with curl and no API
# token, checks what it got (certificate, chain, pins, manifest key) with openssl alone, connects
# with mosquitto_pub and sends telemetry that is stored minimized. Tokens work once, expire and can
# be revoked; a bad CSR does not spend one; a policy change applies to the running server's next
# message; the CRL is public, the chain is not.
. "$(dirname "$0")/lib.sh"
D=$T/data
O=$T/out
mkdir -p "$O"
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
ADMIN=$(new_token ops-admin admin)
OPER=$(new_token ops-operate operate)
READ=$(new_token ops-read read)
start_hearth "$D" || { nok "hearth serve starts"; exit 1; }
t "the REST API listens" test -n "$API_PORT"

# call NAME TOKEN METHOD PATH [CURL ARGS...]: one request; the body goes to $T/NAME.body, the
# status to $T/NAME.status.
call() {
	local n=$1; shift
	api "$@" > "$T/$n.raw" 2>"$T/$n.err"
	tail -1 "$T/$n.raw" | sed 's/^HTTP //' > "$T/$n.status"
	sed '$d' "$T/$n.raw" > "$T/$n.body"
}
status() { cat "$T/$1.status"; }
# j NAME EXPR: a Python expression over the JSON body d of call NAME (strings printed raw).
# Further arguments are sys.argv[3:].
j() { python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$T/$1.body" "${@:2}" 2>/dev/null; }
json() { call "$@" -H 'Content-Type: application/json'; }
# enroll NAME TOKEN CSRFILE: the device's request, with no API token.
enroll() {
	python3 -c 'import json, sys; print(json.dumps({"token": sys.argv[1], "csr": open(sys.argv[2]).read()}))' \
		"$2" "$3" > "$T/$1.req"
	json "$1" "" POST /api/v1/enroll --data-binary "@$T/$1.req"
}
new_enroll_token() { json "$1" "$OPER" POST /api/v1/enrollment-tokens -d "$2"; }
audit_count() { sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM audit_log WHERE action = '$1'${2:+ AND target = '$2'}"; }

# --- models and policies -----------------------------------------------------------------------
json m1 "$ADMIN" PUT /api/v1/models/heater --data-binary @schema/policies/smart-heater.json
t_eq "PUT a model's policy: 200" 200 "$(status m1)"
t_eq "... the answer holds the policy" 3600 "$(j m1 'd["policy"]["fields"]["temperature"]["bucket_s"]')"
t_eq "... and no warnings (nothing sensitive kept)" 0 "$(j m1 'len(d["warnings"])')"
t_eq "... audited" 1 "$(audit_count model.set_policy heater)"
call m2 "$READ" GET /api/v1/models/heater
t_eq "GET the model gives back the stored policy" True \
	"$(j m2 'd["name"] == "heater" and d["policy"] == json.load(open("schema/policies/smart-heater.json"))')"
call m3 "$READ" GET /api/v1/models
t_eq "the model list has it, with a policy and no device" True \
	"$(j m3 '[m for m in d["items"] if m["name"] == "heater"] == [{"name": "heater", "has_policy": True, "devices": 0}]')"
call m4 "$READ" GET /api/v1/models/nosuch
t_eq "an unknown model is 404" 404 "$(status m4)"
json m5 "$OPER" PUT /api/v1/models/heater --data-binary @schema/policies/smart-heater.json
t_eq "an operate token may not set a policy (403)" 403 "$(status m5)"
call m6 "$ADMIN" PUT /api/v1/models/heater -H 'Content-Type: text/plain' --data-binary @schema/policies/smart-heater.json
t_eq "a policy must be sent as application/json (415)" 415 "$(status m6)"
json m7 "$ADMIN" PUT /api/v1/models/heater -d '{"policy": 1, "last_seen_bucket_s": 3600, "fields": {
	"temperature": {"type": "number", "aggregate": "mean", "bucket_s": 3600, "retention_days": 30},
	"co2_ppm": {"type": "number", "aggregate": "mean", "bucket_s": 60, "retention_days": 30}}}'
t_eq "an invalid policy is refused with 422" 422 "$(status m7)"
t_eq "... code invalid_policy" invalid_policy "$(j m7 'd["error"]["code"]')"
t_out "... and a message naming the field" '"message":"fields\.co2_ppm' cat "$T/m7.body"
call m8 "$READ" GET /api/v1/models/heater
t_eq "... the stored policy is unchanged" True \
	"$(j m8 'd["policy"] == json.load(open("schema/policies/smart-heater.json"))')"
json m9 "$ADMIN" PUT /api/v1/models/eco --data-binary @schema/policies/smart-heater-presence.json
t_eq "a policy keeping a sensitive field (sensitive_ok) is accepted" 200 "$(status m9)"
t_out "... with one warning naming it" '^\["setpoint \(' j m9 'json.dumps(d["warnings"])'
t_eq "... the model was created" True "$(j m9 'd["name"] == "eco"')"

# --- enrollment tokens ---------------------------------------------------------------------------
new_enroll_token e1 '{"model": "heater"}'
t_eq "an operator makes an enrollment token: 201" 201 "$(status e1)"
TOK1=$(j e1 'd["token"]'); TID1=$(j e1 'd["id"]')
t "... shaped hte_<id>_<secret>" test "${TOK1#hte_${TID1}_}" != "$TOK1"
t_eq "... not bound to a device id" None "$(j e1 'd["device_id"]')"
t_eq "... expiring in a day by default" True "$(j e1 'abs(d["expires_at"] - __import__("time").time() - 86400) < 60')"
t_eq "... audited" 1 "$(audit_count enrollment_token.create "$TID1")"
t_eq "... the database keeps only its hash" 0 "$(grep -rlaF -- "${TOK1##*_}" "$D" | wc -l)"
new_enroll_token e2 '{"model": "nosuch"}'
t_eq "a token for an unknown model: 422 unknown_model" "422 unknown_model" "$(status e2) $(j e2 'd["error"]["code"]')"
new_enroll_token e3 '{"model": "heater", "colour": "red"}'
t_eq "an unknown field: 422" "422 unknown_field" "$(status e3) $(j e3 'd["error"]["code"]')"
new_enroll_token e4 '{"model": "heater", "ttl_s": 59}'
t_eq "ttl_s under 60: 422" 422 "$(status e4)"
new_enroll_token e5 '{"model": "heater", "ttl_s": 2592001}'
t_eq "ttl_s over 30 days: 422" 422 "$(status e5)"
new_enroll_token e6 '{"model": "heater", "ttl_s": "600"}'
t_eq "ttl_s as a string: 422" 422 "$(status e6)"
new_enroll_token e7 '{"model": "heater", "device_id": "bad id!"}'
t_eq "a device_id that is not an id: 422" 422 "$(status e7)"
new_enroll_token e8 '{}'
t_eq "no model: 422" 422 "$(status e8)"
json e9 "$READ" POST /api/v1/enrollment-tokens -d '{"model": "heater"}'
t_eq "a read token may not make enrollment tokens (403)" 403 "$(status e9)"

# --- the device enrolls --------------------------------------------------------------------------
openssl ecparam -name prime256v1 -genkey -noout -out "$O/dev.key" 2>/dev/null
openssl req -new -key "$O/dev.key" -subj "/CN=ignored-serial-1234" -out "$T/dev.csr" 2>/dev/null
t "the device made its key and CSR" test -s "$T/dev.csr"
enroll n1 "$TOK1" "$T/dev.csr"
t_eq "the device enrolls with its token and CSR, no API token: 201" 201 "$(status n1)"
ID=$(j n1 'd["device_id"]')
t_out "its id is random (32 hex digits), not what the CSR asked" '^[0-9a-f]{32}$' echo "$ID"
j n1 'd["certificate"]' > "$O/$ID.crt"
j n1 'd["ca_chain"]' > "$O/ca.pem"
cp "$O/dev.key" "$O/$ID.key"
t "the certificate verifies against the returned chain (openssl verify)" openssl verify -CAfile "$O/ca.pem" "$O/$ID.crt"
t_out "its CN is the device id" "CN ?= ?$ID\$" openssl x509 -in "$O/$ID.crt" -noout -subject
t_eq "it certifies the device's own key" "$(openssl pkey -in "$O/dev.key" -pubout)" \
	"$(openssl x509 -in "$O/$ID.crt" -noout -pubkey)"
t_eq "the chain is the data directory's CA bundle" "$(cat "$D/certs/ca.pem")" "$(cat "$O/ca.pem")"
PIN="sha256/$(openssl x509 -in "$D/certs/endpoint.crt" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)"
t_eq "the pin is the endpoint key's (sha256/ of its SPKI)" "[\"$PIN\"]" "$(j n1 'json.dumps(d["pins"])')"
j n1 'd["manifest_keys"][0]["public_key"]' > "$T/manifest.pub"
KEYID=$(openssl pkey -pubin -in "$T/manifest.pub" -outform der | openssl dgst -sha256 -hex | awk '{print $NF}')
t_eq "the manifest keyid is the hex SHA-256 of its public key's DER" "$KEYID" "$(j n1 'd["manifest_keys"][0]["keyid"]')"
t_eq "... and that key is the data directory's manifest key" \
	"$(openssl pkey -in "$D/keys/manifest.key" -pubout)" "$(cat "$T/manifest.pub")"
t_eq "exactly one manifest key" 1 "$(j n1 'len(d["manifest_keys"])')"
t_out "the device is registered, in the model" "^$ID +heater +active" "$HEARTH" device list --data "$D"
t_eq "the enrollment is audited" 1 "$(audit_count device.enroll "$ID")"
t_out "... naming the token, never the token itself" "token $TID1" \
	sqlite3 "$D/hearth.db" "SELECT detail FROM audit_log WHERE action = 'device.enroll'"
t_eq "no file and no log line holds any token secret" 0 \
	"$(grep -rlaF -e "${TOK1##*_}" -e "${ADMIN##*_}" "$D" "$HLOG" | wc -l)"

# It connects with what it got and sends telemetry, stored minimized.
t "the enrolled device publishes telemetry over mTLS (mosquitto_pub)" \
	mosq_pub "$ID" -i "$ID" -t "hearth/v1/$ID/telemetry" -q 1 -m '{"temperature": 21.3, "setpoint": 20.2, "motion": true}'
t_out "its temperature is stored minimized (21.3 -> 21.5, hourly mean)" "3600s temperature +mean +21.5 \(n=1\)" \
	"$HEARTH" telemetry query --data "$D" --device "$ID"
t_eq "the motion field was not stored" "" "$("$HEARTH" telemetry query --data "$D" --device "$ID" | grep motion)"

# --- the token works once ------------------------------------------------------------------------
make_csr "$T/other.csr"
enroll n2 "$TOK1" "$T/other.csr"
t_eq "the token replayed: 401" "401 unauthorized" "$(status n2) $(j n2 'd["error"]["code"]')"
t_out "... saying why" "used, revoked or expired" cat "$T/n2.body"
t_eq "... audited as enroll.refused with the token id" 1 "$(audit_count enroll.refused "$TID1")"
t_eq "... and no second device" 1 "$(sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM devices WHERE model = 'heater'")"

# Concurrent replays of one fresh token: exactly one enrolls.
new_enroll_token e10 '{"model": "heater"}'
TOK10=$(j e10 'd["token"]')
for i in 1 2 3 4 5 6; do make_csr "$T/race$i.csr"; done
racers=""
for i in 1 2 3 4 5 6; do enroll race$i "$TOK10" "$T/race$i.csr" & racers="$racers $!"; done
for p in $racers; do wait "$p"; done
t_eq "six concurrent enrollments with one token: one 201, five 401" "201 401 401 401 401 401" \
	"$(for i in 1 2 3 4 5 6; do status race$i; done | sort | tr '\n' ' ' | sed 's/ $//')"
t_eq "... one device more" 2 "$(sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM devices WHERE model = 'heater'")"

# --- bad secrets ---------------------------------------------------------------------------------
new_enroll_token e11 '{"model": "heater"}'
TOK11=$(j e11 'd["token"]'); TID11=$(j e11 'd["id"]')
last=${TOK11: -1}; [ "$last" = 0 ] && sub=1 || sub=0
enroll n3 "${TOK11%?}$sub" "$T/other.csr"
t_eq "a token with a wrong secret: 401" "401 unauthorized" "$(status n3) $(j n3 'd["error"]["code"]')"
enroll n4 "not-a-token" "$T/other.csr"
t_eq "a malformed token: 401" 401 "$(status n4)"
enroll n5 "hth_${TOK11#hte_}" "$T/other.csr"
t_eq "an API-token-shaped token: 401" 401 "$(status n5)"
json n6 "" POST /api/v1/enroll -d '{"token": "x"}'
t_eq "no CSR: 422" 422 "$(status n6)"

# --- a bad CSR does not spend the token ----------------------------------------------------------
printf 'garbage, not a CSR\n' > "$T/garbage.csr"
enroll n7 "$TOK11" "$T/garbage.csr"
t_eq "a garbage CSR: 422 invalid_csr" "422 invalid_csr" "$(status n7) $(j n7 'd["error"]["code"]')"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:secp384r1 -nodes -subj /CN=x \
	-keyout "$T/p384.key" -out "$T/p384.csr" 2>/dev/null
enroll n8 "$TOK11" "$T/p384.csr"
t_eq "a P-384 CSR: 422 invalid_csr" "422 invalid_csr" "$(status n8) $(j n8 'd["error"]["code"]')"
t_out "... with the reason" "P-256" cat "$T/n8.body"
call l1 "$READ" GET /api/v1/enrollment-tokens
t_eq "... the token is still unused" unused "$(j l1 '[x["status"] for x in d["items"] if x["id"] == "'"$TID11"'"][0]')"
enroll n9 "$TOK11" "$T/other.csr"
t_eq "... and still enrolls a good CSR" 201 "$(status n9)"

# --- expired and revoked tokens ------------------------------------------------------------------
new_enroll_token e12 '{"model": "heater", "ttl_s": 60}'
TOK12=$(j e12 'd["token"]'); TID12=$(j e12 'd["id"]')
sqlite3 "$D/hearth.db" "UPDATE enrollment_tokens SET expires_at = strftime('%s', 'now') - 10 WHERE id = '$TID12'"
enroll n10 "$TOK12" "$T/other.csr"
t_eq "an expired token: 401" "401 unauthorized" "$(status n10) $(j n10 'd["error"]["code"]')"
t_eq "... audited as refused" 1 "$(audit_count enroll.refused "$TID12")"
new_enroll_token e13 '{"model": "heater"}'
TOK13=$(j e13 'd["token"]'); TID13=$(j e13 'd["id"]')
call r1 "$OPER" DELETE "/api/v1/enrollment-tokens/$TID13"
t_eq "an operator revokes a token: 200 revoked" "200 revoked" "$(status r1) $(j r1 'd["status"]')"
t_eq "... audited" 1 "$(audit_count enrollment_token.revoke "$TID13")"
enroll n11 "$TOK13" "$T/other.csr"
t_eq "a revoked token: 401" 401 "$(status n11)"
call r2 "$OPER" DELETE "/api/v1/enrollment-tokens/$TID13"
t_eq "revoking it again: 409" 409 "$(status r2)"
call r3 "$OPER" DELETE "/api/v1/enrollment-tokens/$TID1"
t_eq "revoking a used token: 409" 409 "$(status r3)"
call r4 "$OPER" DELETE /api/v1/enrollment-tokens/0000000000000000
t_eq "revoking an unknown token: 404" 404 "$(status r4)"
call r5 "$READ" DELETE "/api/v1/enrollment-tokens/$TID12"
t_eq "a read token may not revoke (403)" 403 "$(status r5)"

# --- a token bound to a device id ----------------------------------------------------------------
new_enroll_token e14 '{"model": "heater", "device_id": "kitchen-1", "ttl_s": 3600}'
t_eq "a token bound to a device id" "201 kitchen-1" "$(status e14) $(j e14 'd["device_id"]')"
TOK14=$(j e14 'd["token"]')
make_csr "$T/k1.csr"
enroll n12 "$TOK14" "$T/k1.csr"
t_eq "... enrolls exactly that id" "201 kitchen-1" "$(status n12) $(j n12 'd["device_id"]')"
j n12 'd["certificate"]' > "$T/k1.crt"
t_out "... in its certificate's CN" "CN ?= ?kitchen-1\$" openssl x509 -in "$T/k1.crt" -noout -subject
new_enroll_token e15 '{"model": "heater", "device_id": "kitchen-1"}'
t_eq "a token for an existing device id: 409" 409 "$(status e15)"

# --- the listing ---------------------------------------------------------------------------------
call l2 "$READ" GET /api/v1/enrollment-tokens
t_eq "the list shows each token's status" "used used used revoked expired used" \
	"$(j l2 '" ".join({x["id"]: x["status"] for x in d["items"]}[i] for i in sys.argv[3:])' "$TID1" \
		"$(j e10 'd["id"]')" "$TID11" "$TID13" "$TID12" "$(j e14 'd["id"]')")"
t_eq "... who enrolled with a used one" "$ID" "$(j l2 '[x["used_by"] for x in d["items"] if x["id"] == "'"$TID1"'"][0]')"
t_eq "... who made them" api:ops-operate "$(j l2 'd["items"][0]["created_by"]')"
t_eq "... never a token or a hash" 0 "$(grep -cE 'hte_|"token"|"hash"' "$T/l2.body")"
call l3 "$READ" GET "/api/v1/enrollment-tokens?limit=2"
t_eq "a page of 2 has a cursor" "2 True" "$(j l3 'len(d["items"]), d["next_cursor"] == d["items"][1]["id"]' | tr -d '(),')"
call l4 "$READ" GET "/api/v1/enrollment-tokens?limit=2&cursor=$(j l3 'd["next_cursor"]')"
t_eq "... the next page follows it" True "$(j l4 'd["items"][0]["id"] > sys.argv[3]' "$(j l3 'd["next_cursor"]')")"

# --- a policy change reaches the running server's next message -----------------------------------
count() { sqlite3 "$D/hearth.db" "SELECT COALESCE(SUM(n), 0) FROM telemetry WHERE device_id = '$ID' AND field = '$1'"; }
t_eq "before: one temperature, one setpoint" "1 1" "$(count temperature) $(count setpoint)"
json p1 "$ADMIN" PUT /api/v1/models/heater -d '{"policy": 1, "last_seen_bucket_s": 3600, "fields": {
	"setpoint": {"type": "number", "round": 0.5, "aggregate": "mean", "bucket_s": 3600, "retention_days": 30}}}'
t_eq "PUT a policy without temperature: 200" 200 "$(status p1)"
t "the device publishes again" \
	mosq_pub "$ID" -i "$ID" -t "hearth/v1/$ID/telemetry" -q 1 -m '{"temperature": 25.0, "setpoint": 21.0}'
t_eq "the message was stored (setpoint), its temperature no more" "1 2" "$(count temperature) $(count setpoint)"

# --- the CA ---------------------------------------------------------------------------------------
call c1 "" GET /api/v1/ca/crl
t_eq "the CRL needs no token" 200 "$(status c1)"
t "... it parses (openssl crl)" openssl crl -in "$T/c1.body" -noout
t "... and verifies against the CA" openssl crl -in "$T/c1.body" -noout -CAfile "$D/certs/ca.pem"
rm -f "$D/certs/crl.pem"
call c2 "" GET /api/v1/ca/crl
t_eq "with the file gone, one is published first" 200 "$(status c2)"
t "... it parses" openssl crl -in "$T/c2.body" -noout
t "... and is on disk again" test -s "$D/certs/crl.pem"
call c3 "" GET /api/v1/ca/chain
t_eq "the chain needs a token" 401 "$(status c3)"
call c4 "$READ" GET /api/v1/ca/chain
t_eq "... with one: 200" 200 "$(status c4)"
t_eq "... the issuing CA and the root" "$(cat "$D/certs/ca.pem")" "$(cat "$T/c4.body")"
t_out "... as application/x-pem-file" "^[Cc]ontent-[Tt]ype: application/x-pem-file" \
	curl -sS -o /dev/null -D - --cacert "$D/certs/ca.pem" -H "Authorization: Bearer $READ" \
	"https://127.0.0.1:$API_PORT/api/v1/ca/chain"
call c5 "$READ" GET /api/v1/ca/pins
t_eq "the pins: the endpoint's" "[\"$PIN\"]" "$(j c5 'json.dumps(d["endpoint_pins"])')"
t_eq "... and the manifest key" "$KEYID" "$(j c5 'd["manifest_keys"][0]["keyid"]')"
call c6 "" GET /api/v1/ca/pins
t_eq "the pins need a token" 401 "$(status c6)"

stop_hearth
t_eq "no token secret reached the log" 0 "$(grep -caF -e "${TOK1##*_}" -e "${TOK11##*_}" -e "${TOK14##*_}" "$HLOG")"
t_fails "no sanitizer report" grep -Eq 'Sanitizer|runtime error:' "$T"/serve.*.log
