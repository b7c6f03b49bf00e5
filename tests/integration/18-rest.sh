# The REST administration API (devices, telemetry, audit) over HTTPS with bearer tokens, from the
# outside: curl for requests, openssl for the certificates and CRL it hands out, mosquitto_pub/_sub
# as the devices. The rate limit on bad tokens blocks 127.0.0.1 for 60 s, so it comes last.
. "$(dirname "$0")/lib.sh"
D=$T/data
O=$T/out
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
"$HEARTH" model set --data "$D" --model heater --policy schema/policies/smart-heater.json >/dev/null 2>&1 || nok "model set"
for id in h1 h2 live1; do
	"$HEARTH" device add --data "$D" --id $id --model heater --genkey --out "$O" >/dev/null 2>&1 || nok "add $id"
done
"$HEARTH" device add --data "$D" --id lamp1 --model lamp --genkey --out "$O" >/dev/null 2>&1 || nok "add lamp1"
ADM=$(new_token adm admin)
OP=$(new_token op operate)
RD=$(new_token rd read)
t "three API tokens were made" test -n "$ADM" -a -n "$OP" -a -n "$RD"
start_hearth "$D" || { nok "hearth serve starts"; exit 1; }
t "the REST API listens" test -n "$API_PORT"
[ "$fail" -eq 0 ] || exit 1

# call TOKEN METHOD PATH [CURL ARGS]: one request; sets ST (the HTTP status), the body in $T/body.
call() {
	api "$@" > "$T/resp" 2>&1
	ST=$(tail -1 "$T/resp" | sed -n 's/^HTTP //p')
	sed '$d' "$T/resp" > "$T/body"
}
# js PYEXPR: a Python expression over the last body, parsed as JSON into r.
js() { python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$T/body" "$1" 2>&1; }
# call_json TOKEN METHOD PATH JSONTEXT: a request with a JSON body.
call_json() { call "$1" "$2" "$3" -H 'Content-Type: application/json' --data-binary "$4"; }
# t_call DESC STATUS [CODE]: the last call answered STATUS (and, for an error, the error code CODE).
t_call() {
	cp "$T/resp" "$T/.out"
	if [ "$ST" != "$2" ]; then nok "$1 (HTTP $ST, not $2)"
	elif [ $# -ge 3 ] && [ "$(js 'r["error"]["code"]')" != "$3" ]; then nok "$1 (error code not $3)"
	else ok "$1"; fi
}
NOW=$(date +%s)

# --- authentication and scopes ------------------------------------------------------------------
call "" GET /healthz
t_call "healthz answers without a token" 200
t_eq "... ok" ok "$(cat "$T/body")"
call "" GET /api/v1/devices
t_call "no token: 401" 401 unauthorized
t_out "... with WWW-Authenticate: Bearer" "^[Ww][Ww][Ww]-[Aa]uthenticate: Bearer" api "" GET /api/v1/devices -D -
BAD=${ADM%?}$([ "${ADM: -1}" = 0 ] && echo 1 || echo 0)
call "$BAD" GET /api/v1/devices
t_call "a token with a wrong secret: 401" 401 unauthorized
call "" GET /api/v1/devices -H "Authorization: Basic YWRtOmFkbQ=="
t_call "another auth scheme: 401" 401 unauthorized
call "" GET /metrics
t_call "metrics need a token too" 401
call "$RD" GET /api/v1/devices
t_call "a read token lists devices" 200
call_json "$RD" POST /api/v1/devices '{"model": "heater", "csr": "x"}'
t_call "a read token cannot add a device (403)" 403 forbidden
call_json "$RD" PATCH /api/v1/devices/h1 '{"tags": ["x"]}'
t_call "... nor patch one" 403 forbidden
call "$RD" POST /api/v1/devices/h1/revoke
t_call "... nor revoke one" 403 forbidden
call "$OP" DELETE /api/v1/devices/h1
t_call "an operate token cannot decommission (admin only)" 403 forbidden
call "$OP" GET /api/v1/audit
t_call "... nor read the audit log" 403 forbidden
call "$RD" PUT /api/v1/devices/h1
t_call "a method a route does not have: 405" 405
call "$RD" GET /api/v1/nothing
t_call "an unknown route: 404" 404 not_found

# --- adding a device from a CSR ------------------------------------------------------------------
make_csr "$T/c1.csr"
csr_body() { python3 -c 'import json, sys; d = json.loads(sys.argv[2]); d["csr"] = open(sys.argv[1]).read(); print(json.dumps(d))' "$@"; }
csr_body "$T/c1.csr" '{"model": "heater", "id": "rest1"}' > "$T/create.json"
call "$OP" POST /api/v1/devices -H 'Content-Type: application/json' --data-binary @"$T/create.json"
t_call "a device is added from a CSR (201)" 201
t_eq "... with the id asked for" rest1 "$(js 'r["id"]')"
js 'r["certificate"]' > "$T/rest1.crt"
js 'r["ca_chain"]' > "$T/chain.pem"
t "its certificate verifies against the CA (openssl verify)" openssl verify -CAfile "$D/certs/ca.pem" "$T/rest1.crt"
t_out "its CN is the id" "CN ?= ?rest1" openssl x509 -in "$T/rest1.crt" -noout -subject
t_eq "it certifies the CSR's key" "$(openssl pkey -in "$T/c1.csr.key" -pubout)" "$(openssl x509 -in "$T/rest1.crt" -noout -pubkey)"
t_eq "ca_chain is the CA bundle" "$(cat "$D/certs/ca.pem")" "$(cat "$T/chain.pem")"
call "$OP" POST /api/v1/devices -H 'Content-Type: application/json' --data-binary @"$T/create.json"
t_call "the same id again: 409" 409
csr_body "$T/c1.csr" '{"model": "heater"}' > "$T/create2.json"
call "$OP" POST /api/v1/devices -H 'Content-Type: application/json' --data-binary @"$T/create2.json"
t_call "without an id, one is made" 201
RID=$(js 'r["id"]')
t "... 32 hex digits" sh -c "echo '$RID' | grep -Eqx '[0-9a-f]{32}'"
make_csr "$T/ca.csr" -addext basicConstraints=critical,CA:TRUE
csr_body "$T/ca.csr" '{"model": "heater", "id": "evil"}' > "$T/evil.json"
call "$OP" POST /api/v1/devices -H 'Content-Type: application/json' --data-binary @"$T/evil.json"
t_call "a CSR asking to be a CA: 422 invalid_csr" 422 invalid_csr
t_out "... the message says why" "CA" cat "$T/body"
call_json "$OP" POST /api/v1/devices '{"model": "heater", "csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "id": "junk"}'
t_call "a garbage CSR: 422 invalid_csr" 422 invalid_csr
call "$RD" GET /api/v1/devices/evil
t_call "... and no device was recorded for it" 404
call_json "$OP" POST /api/v1/devices '{"csr": "x"}'
t_call "no model: 422" 422 invalid_field
t_out "... naming the field" "'model'" cat "$T/body"
call_json "$OP" POST /api/v1/devices '{"model": 7, "csr": "x"}'
t_call "a model that is not a string: 422" 422 invalid_field
call_json "$OP" POST /api/v1/devices '{"model": "heater"}'
t_call "no csr: 422 naming it" 422 invalid_field
t_out "... naming it" "'csr'" cat "$T/body"
call_json "$OP" POST /api/v1/devices '{"model": "heater", "csr": "x", "id": "a/b"}'
t_call "an id that is not [A-Za-z0-9_-]{1,64}: 422" 422 invalid_field
call_json "$OP" POST /api/v1/devices '{"model": "heater", "csr": "x", "id": "ok\u0000x"}'
t "an id with a NUL byte is refused ($ST)" test "$ST" = 400 -o "$ST" = 422
call_json "$OP" POST /api/v1/devices '{"model": "heater", "csr": "x", "owner": "bob"}'
t_call "an unknown field: 422" 422 unknown_field
t_out "... naming it" "owner" cat "$T/body"
call "$OP" POST /api/v1/devices -H 'Content-Type: text/plain' --data-binary @"$T/create2.json"
t_call "a body that is not application/json: 415" 415
call_json "$OP" POST /api/v1/devices '{"model": "heater", '
t_call "invalid JSON: 400" 400 invalid_json
call_json "$OP" POST /api/v1/devices '{"model": "heater", "model": "lamp", "csr": "x"}'
t_call "duplicate keys: 400" 400 invalid_json
call_json "$OP" POST /api/v1/devices '["model"]'
t_call "a body that is not an object: 400" 400 invalid_json
python3 -c 'import json; print(json.dumps({"model": "heater", "csr": "A" * 70000}))' > "$T/big.json"
call "$OP" POST /api/v1/devices -H 'Content-Type: application/json' --data-binary @"$T/big.json"
t_call "a body over 64 KiB: 413" 413
call "$OP" POST /api/v1/devices -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @"$T/big.json"
t_call "... also when chunked (no Content-Length)" 413

# --- reading and listing -------------------------------------------------------------------------
call "$RD" GET /api/v1/devices/rest1
t_call "a device by id" 200
t_eq "... its fields" "rest1 heater active None None []" \
	"$(js '" ".join(str(x) for x in (r["id"], r["model"], r["status"], r["revoked_at"], r["last_seen"], r["tags"]))')"
t "... created now, its certificate valid about a year" test "$(js 'int(abs(r["created_at"] - '$NOW') < 120 and 360 * 86400 < r["cert_not_after"] - '$NOW' < 370 * 86400)')" = 1
call "$RD" GET /api/v1/devices/nobody
t_call "an unknown device: 404" 404 not_found
for p in '/api/v1/devices/..' '/api/v1/devices/%2e%2e' '/api/v1/devices/rest1%00' '/api/v1/devices/rest1%00x' \
	'/api/v1/devices/%00' '/api/v1/devices/..%2f..%2fetc' '/api/v1/devices/rest1/../rest1'; do
	call "$RD" GET "$p" --path-as-is
	t "the path $p: 400 or 404, never 200 ($ST)" test "$ST" = 400 -o "$ST" = 404
done

call "$RD" GET /api/v1/devices
t_call "the list" 200
ALL=$(js '" ".join(d["id"] for d in r["items"])')
t_eq "... holds every device, by id" "$(printf '%s\n' h1 h2 lamp1 live1 rest1 "$RID" | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')" "$ALL"
t_eq "... and says there is no next page" None "$(js 'r["next_cursor"]')"
walked="" cursor="" pages=0
while [ $pages -lt 20 ]; do
	call "$RD" GET "/api/v1/devices?limit=1${cursor:+&cursor=$cursor}"
	[ "$ST" = 200 ] || break
	walked="$walked $(js '" ".join(d["id"] for d in r["items"])')"
	cursor=$(js 'r["next_cursor"] or ""')
	pages=$((pages + 1))
	[ -n "$cursor" ] || break
done
t_eq "limit=1 and the cursor walk the same list, a device a page" "$ALL" "$(echo $walked)"
t_eq "... in 6 pages" 6 "$pages"
call "$RD" GET '/api/v1/devices?limit=2&cursor=h2'
t_eq "a cursor starts after that id" "lamp1 live1" "$(js '" ".join(d["id"] for d in r["items"])')"
call "$RD" GET '/api/v1/devices?limit=1000'
t_call "limit=1000 is allowed" 200
for l in 0 -1 99999999 1001 abc '' 1e3 ' 1'; do
	call "$RD" GET /api/v1/devices --get --data-urlencode "limit=$l"
	t_call "limit='$l': 400" 400 invalid_limit
done
call "$RD" GET '/api/v1/devices?cursor=a/b'
t "a cursor with '/': 400 or 404 ($ST)" test "$ST" = 400 -o "$ST" = 404
call "$RD" GET '/api/v1/devices?cursor=..%2Fx'
t "... also escaped ($ST)" test "$ST" = 400 -o "$ST" = 404
call "$RD" GET '/api/v1/devices?model=lamp'
t_eq "?model= filters" lamp1 "$(js '" ".join(d["id"] for d in r["items"])')"
for m in "heater' OR '1'='1" "x' OR 1=1 --" 'heater"; DROP TABLE devices; --' '%' '_eater' "heater'"; do
	call "$RD" GET /api/v1/devices --get --data-urlencode "model=$m"
	t_eq "?model=$m: an empty list" "200 0" "$ST $(js 'len(r["items"])')"
done
call "$RD" GET /api/v1/devices --get --data-urlencode "tag=x' OR '1'='1"
t_eq "... and the same in ?tag=" "200 0" "$ST $(js 'len(r["items"])')"
call "$RD" GET '/api/v1/devices?status=active'
t_eq "?status=active lists all of them (none revoked yet)" 6 "$(js 'len(r["items"])')"
call "$RD" GET '/api/v1/devices?status=bogus'
t_call "?status= something else: 400" 400
for s in abc -5 1.5 99999999999999 ''; do
	call "$RD" GET /api/v1/devices --get --data-urlencode "seen_since=$s"
	t_call "seen_since='$s': 400" 400
done

# --- tags and model ------------------------------------------------------------------------------
call_json "$OP" PATCH /api/v1/devices/rest1 '{"tags": ["kitchen", "floor:1", "v1.2_x-y"]}'
t_call "tags are set" 200
t_eq "... and answered (sorted)" "['floor:1', 'kitchen', 'v1.2_x-y']" "$(js 'r["tags"]')"
call_json "$OP" PATCH /api/v1/devices/h1 '{"tags": ["kitchen"]}'
call "$RD" GET '/api/v1/devices?tag=kitchen'
t_eq "?tag= filters" "h1 rest1" "$(js '" ".join(d["id"] for d in r["items"])')"
call "$RD" GET '/api/v1/devices?tag=kitchen&model=heater&limit=1'
t_eq "filters combine with pagination" "h1 h1" "$(js '" ".join(d["id"] for d in r["items"]) + " " + str(r["next_cursor"])')"
call "$RD" GET '/api/v1/devices?tag=floor:1'
t_eq "... a tag with ':'" rest1 "$(js '" ".join(d["id"] for d in r["items"])')"
call_json "$OP" PATCH /api/v1/devices/rest1 '{"tags": ["a b"]}'
t_call "a tag with a space: 422" 422 invalid_field
call_json "$OP" PATCH /api/v1/devices/rest1 '{"tags": ["k/x"]}'
t_call "a tag with '/': 422" 422 invalid_field
call_json "$OP" PATCH /api/v1/devices/rest1 '{"tags": [""]}'
t_call "an empty tag: 422" 422 invalid_field
call_json "$OP" PATCH /api/v1/devices/rest1 "{\"tags\": [\"$(printf 'a%.0s' $(seq 65))\"]}"
t_call "a 65-character tag: 422" 422 invalid_field
call_json "$OP" PATCH /api/v1/devices/rest1 "$(python3 -c 'import json; print(json.dumps({"tags": ["t%d" % i for i in range(33)]}))')"
t_call "33 tags: 422" 422 invalid_field
call_json "$OP" PATCH /api/v1/devices/rest1 "$(python3 -c 'import json; print(json.dumps({"tags": ["t%d" % i for i in range(32)]}))')"
t_eq "32 tags are fine" "200 32" "$ST $(js 'len(r["tags"])')"
call_json "$OP" PATCH /api/v1/devices/rest1 '{"tags": "kitchen"}'
t_call "tags that are not an array: 422" 422 invalid_field
call_json "$OP" PATCH /api/v1/devices/rest1 '{"tags": [1]}'
t_call "a tag that is not a string: 422" 422 invalid_field
call_json "$OP" PATCH /api/v1/devices/rest1 '{"tags": [], "colour": "red"}'
t_call "an unknown field: 422" 422 unknown_field
call_json "$OP" PATCH /api/v1/devices/rest1 '{"model": "no good"}'
t_call "a bad model name: 422" 422 invalid_field
call "$RD" GET /api/v1/devices/rest1
t_eq "refused patches changed nothing" "32 heater" "$(js 'len(r["tags"])') $(js 'r["model"]')"
call_json "$OP" PATCH /api/v1/devices/nobody '{"tags": ["x"]}'
t_call "patching an unknown device: 404" 404 not_found
call_json "$OP" PATCH /api/v1/devices/rest1 '{"tags": ["kitchen"], "model": "heater2"}'
t_eq "tags and model together" "200 ['kitchen'] heater2" "$ST $(js 'r["tags"]') $(js 'r["model"]')"
call_json "$OP" PATCH /api/v1/devices/rest1 '{"model": "heater"}'
t_eq "... and the model back" "200 heater" "$ST $(js 'r["model"]')"

# --- telemetry, while the MQTT endpoint keeps serving --------------------------------------------
pub() { mosq_pub "$1" -i "$1" -t "hearth/v1/$1/telemetry" -q 1 -m "$2"; }
( i=0; while [ $i -lt 20 ]; do pub h2 '{"temperature": 19}' && echo ok; i=$((i + 1)); done ) > "$T/acks" 2>&1 &
LOADER=$!; BG_PIDS="$BG_PIDS $LOADER"
t "h1 sends telemetry with sensitive sentinels" pub h1 \
	'{"temperature": 21.3, "setpoint": 21.0, "error_code": "E7", "co2_ppm": 987654, "Motion": "SENTINEL-7f3a", "power_w": 55511.5}'
t "h1 sends a second sample" pub h1 '{"temperature": 22.2}'
n=0
while [ $n -lt 30 ] && kill -0 $LOADER 2>/dev/null; do
	call "$RD" GET /api/v1/devices; call "$RD" GET /api/v1/devices/h2/telemetry; n=$((n + 1))
done
wait $LOADER
t_eq "the endpoint acknowledged every message sent while the API was busy" 20 "$(grep -c '^ok$' "$T/acks")"
call "$RD" GET /api/v1/devices/h1/telemetry
t_call "h1's telemetry" 200
cp "$T/body" "$T/h1.json"
# Two samples in the same hour give a mean of 21.75 (21.5 and 22 after rounding); across an hour
# boundary two buckets hold the same sum.
t_eq "temperature: hourly means over 2 samples rounded to 0.5 (sum 43.5)" "mean 3600 43.5 2" \
	"$(js '" ".join(str(x) for x in ({i["agg"] for i in r["items"] if i["field"] == "temperature"}.pop(), {i["bucket_s"] for i in r["items"] if i["field"] == "temperature"}.pop(), sum(i["value"] * i["n"] for i in r["items"] if i["field"] == "temperature"), sum(i["n"] for i in r["items"] if i["field"] == "temperature")))')"
t_eq "the error code as a string (last)" "last E7" "$(js '" ".join(str(x) for i in r["items"] if i["field"] == "error_code" for x in (i["agg"], i["value"]))')"
t_eq "... complete" False "$(js 'r["truncated"]')"
t_eq "buckets are whole hours" True "$(js 'all(i["bucket_start"] % 3600 == 0 for i in r["items"])')"
t_eq "only policy fields are there" "error_code setpoint temperature" "$(js '" ".join(sorted({i["field"] for i in r["items"]}))')"
for s in 987654 SENTINEL-7f3a 55511; do
	t_eq "sentinel $s is nowhere in the answer" 0 "$(grep -c -- "$s" "$T/h1.json")"
done
call "$RD" GET '/api/v1/devices/h1/telemetry?field=temperature'
t_eq "?field= keeps one field" temperature "$(js '" ".join(sorted({i["field"] for i in r["items"]}))')"
call "$RD" GET "/api/v1/devices/h1/telemetry?from=$((NOW - 86400))&to=$((NOW + 86400))"
t_eq "an explicit window that holds them" 3 "$(js 'len({i["field"] for i in r["items"]})')"
call "$RD" GET "/api/v1/devices/h1/telemetry?from=1000&to=2000"
t_eq "a window long ago is empty" "200 0" "$ST $(js 'len(r["items"])')"
call "$RD" GET "/api/v1/devices/h1/telemetry?to=$((NOW - 30 * 86400))"
t_eq "to alone: the week before it (empty)" "200 0" "$ST $(js 'len(r["items"])')"
call "$RD" GET "/api/v1/devices/h1/telemetry?from=2000&to=1000"
t_call "to before from: 400" 400
call "$RD" GET "/api/v1/devices/h1/telemetry?from=2000&to=2000"
t_call "to equal to from: 400" 400
for q in from=abc to=-1 from=1e9 'to=12%2034' from=99999999999999999999 to=; do
	call "$RD" GET "/api/v1/devices/h1/telemetry?$q"
	t_call "?$q: 400" 400
done
call "$RD" GET /api/v1/devices/nobody/telemetry
t_call "telemetry of an unknown device: 404" 404
call "$RD" GET /api/v1/devices/h1
t "h1's last_seen is set, to the hour" test "$(js 'int(r["last_seen"] % 3600 == 0 and abs(r["last_seen"] - '$NOW') < 7200)')" = 1
call "$RD" GET "/api/v1/devices?seen_since=$((NOW - 7200))"
t_eq "?seen_since= lists the devices seen" "h1 h2" "$(js '" ".join(d["id"] for d in r["items"])')"
call "$RD" GET /api/v1/telemetry/dropped
t_call "dropped counts" 200
t_eq "... the sensitive fields by their class, counted, for their model" \
	"heater:co2:True:1 heater:motion:True:1 heater:power:True:1" \
	"$(js '" ".join(sorted("%s:%s:%s:%s" % (i["model"], i["field"], i["sensitive"], i["count"]) for i in r["items"]))')"
for s in 987654 SENTINEL-7f3a 55511; do
	t_eq "... never a value ($s)" 0 "$(grep -c -- "$s" "$T/body")"
done
# A device moved to another model is minimized by that model's policy from its next message on:
# the endpoint is told, so it does not keep the old model cached.
call_json "$OP" PATCH /api/v1/devices/h1 '{"model": "lamp"}'
t_eq "h1 moves to the model lamp (no policy)" "200 lamp" "$ST $(js 'r["model"]')"
t "h1 publishes under it" pub h1 '{"temperature": 30}'
call "$RD" GET '/api/v1/devices/h1/telemetry?field=temperature'
t_eq "... and at once nothing more is stored for it" 2 "$(js 'sum(i["n"] for i in r["items"])')"
call_json "$OP" PATCH /api/v1/devices/h1 '{"model": "heater"}'
t_eq "h1 moves back" "200 heater" "$ST $(js 'r["model"]')"

# --- revocation, live -----------------------------------------------------------------------------
# Line-buffered, so its debug lines show when they happen.
timeout 40 stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$PORT" --cafile "$O/ca.pem" --cert "$O/live1.crt" \
	--key "$O/live1.key" -i live1 -t 'hearth/v1/live1/#' -W 30 -d > "$T/live1.out" 2>&1 &
SUB=$!; BG_PIDS="$BG_PIDS $SUB"
t "live1 connects and subscribes (mosquitto_sub)" wait_for 10 grep -q "received SUBACK" "$T/live1.out"
serial=$(openssl x509 -in "$O/live1.crt" -noout -serial | cut -d= -f2)
t "its serial is not in the CRL yet" sh -c "! openssl crl -in '$D/certs/crl.pem' -noout -text | grep -q 'Serial Number: $serial'"
before=$(date +%s%N)
call "$OP" POST /api/v1/devices/live1/revoke
t_call "revoke over REST" 200
t_eq "... answers the new state" "live1 revoked 1" "$(js '" ".join(str(x) for x in (r["id"], r["status"], r["certificates_revoked"]))')"
t "the live connection is closed" wait_for 5 grep -q "live1 (.*): closed: device revoked" "$HLOG"
after=$(date +%s%N)
t "... within 2 seconds ($(( (after - before) / 1000000 )) ms)" test $(( (after - before) / 1000000 )) -le 2000
t_out "the CRL lists its serial" "Serial Number: $serial" openssl crl -in "$D/certs/crl.pem" -noout -text
t "the CRL still verifies against the CA" openssl crl -in "$D/certs/crl.pem" -noout -CAfile "$D/certs/ca.pem"
t_fails "its next connection is refused" mosq_pub live1 -i live1 -t hearth/v1/live1/telemetry -m x -q 1
kill "$SUB" 2>/dev/null; wait "$SUB" 2>/dev/null
call "$OP" POST /api/v1/devices/live1/revoke
t_call "revoking it again: 409" 409
call "$OP" POST /api/v1/devices/nobody/revoke
t_call "revoking an unknown device: 404" 404
call "$RD" GET /api/v1/devices/live1
t_eq "it reads as revoked, since now" "revoked 1" "$(js 'r["status"]') $(js 'int(abs(r["revoked_at"] - '$NOW') < 600)')"
call "$RD" GET /api/v1/devices/live1/certificates
t_call "its certificates" 200
t_eq "... one, revoked, the one it had" "1 $serial revoked 1" \
	"$(js '" ".join(str(x) for x in (len(r["items"]), r["items"][0]["serial"], r["items"][0]["status"], int(r["items"][0]["revoked_at"] > 0)))')"
t_eq "... with its fingerprint" "$(openssl x509 -in "$O/live1.crt" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f)" \
	"$(js 'r["items"][0]["fingerprint"].lower()')"
call "$RD" GET /api/v1/devices/nobody/certificates
t_call "certificates of an unknown device: 404" 404
call "$RD" GET '/api/v1/devices?status=revoked'
t_eq "?status=revoked" live1 "$(js '" ".join(d["id"] for d in r["items"])')"
t "h1 still publishes" pub h1 '{"temperature": 20}'

# --- decommission --------------------------------------------------------------------------------
h2serial=$(openssl x509 -in "$O/h2.crt" -noout -serial | cut -d= -f2)
call "$ADM" DELETE /api/v1/devices/h2
t_call "DELETE decommissions" 200
t_eq "... answers the new state" "h2 decommissioned 1" "$(js '" ".join(str(x) for x in (r["id"], r["status"], r["certificates_revoked"]))')"
t_out "... its certificate is in the CRL" "Serial Number: $h2serial" openssl crl -in "$D/certs/crl.pem" -noout -text
call "$RD" GET /api/v1/devices/h2/telemetry
t_eq "... its telemetry is gone" "200 0" "$ST $(js 'len(r["items"])')"
call "$RD" GET /api/v1/devices/h2
t_eq "... it reads as decommissioned, last_seen gone" "decommissioned None" "$(js 'r["status"]') $(js 'r["last_seen"]')"
t_fails "... it cannot connect" mosq_pub h2 -i h2 -t hearth/v1/h2/telemetry -m x -q 1
call "$ADM" DELETE /api/v1/devices/h2
t_call "decommissioning it again: 409" 409
call "$ADM" DELETE /api/v1/devices/live1
t_call "a revoked device can be decommissioned" 200
t_eq "... with nothing left to revoke" 0 "$(js 'r["certificates_revoked"]')"
call "$ADM" DELETE /api/v1/devices/nobody
t_call "decommissioning an unknown device: 404" 404
t "h1 still publishes" pub h1 '{"temperature": 20}'

# --- the audit log -------------------------------------------------------------------------------
call "$ADM" GET /api/v1/audit
t_call "the audit log" 200
cp "$T/body" "$T/audit.json"
aud() { js '" ".join(str(x) for e in r["items"] if e["action"] == "'"$1"'" and e["target"] == "'"$2"'" for x in (e["actor"], e["source"]))'; }
t_eq "device.add from REST, by api:op" "api:op" "$(js '" ".join(e["actor"] for e in r["items"] if e["action"] == "device.add" and e["target"] == "rest1")')"
t_eq "device.revoke by api:op from 127.0.0.1" "api:op 127.0.0.1" "$(aud device.revoke live1)"
t_eq "device.decommission by api:adm from 127.0.0.1" "api:adm 127.0.0.1 api:adm 127.0.0.1" \
	"$(js '" ".join(str(x) for e in r["items"] if e["action"] == "device.decommission" for x in (e["actor"], e["source"]))')"
t_eq "every successful patch (7), none of the refused ones" 7 "$(js 'sum(1 for e in r["items"] if e["action"] == "device.patch" and e["actor"] == "api:op" and e["source"] == "127.0.0.1")')"
t_out "a patch entry says what changed" 'heater2' js '[e["detail"] for e in r["items"] if e["action"] == "device.patch" and e["target"] == "rest1"]'
t_eq "newest first" True "$(js 'all(a["id"] > b["id"] for a, b in zip(r["items"], r["items"][1:]))')"
t_eq "the CLI's entries have no source" None "$(js '[e["source"] for e in r["items"] if e["action"] == "device.add" and e["target"] == "h1"][0]')"
TOTAL=$(js 'len(r["items"])')
walked="" cursor="" pages=0
while [ $pages -lt 200 ]; do
	call "$ADM" GET "/api/v1/audit?limit=3${cursor:+&cursor=$cursor}"
	[ "$ST" = 200 ] || break
	walked="$walked $(js '" ".join(str(e["id"]) for e in r["items"])')"
	cursor=$(js 'r["next_cursor"] or ""')
	pages=$((pages + 1))
	[ -n "$cursor" ] || break
done
t_eq "limit=3 and the cursor walk the whole log" "$(python3 -c 'import json, sys; print(" ".join(str(e["id"]) for e in json.load(open(sys.argv[1]))["items"]))' "$T/audit.json")" "$(echo $walked)"
t "... in pages ($pages for $TOTAL entries)" test "$pages" -eq $(( (TOTAL + 2) / 3 ))
for c in abc 0 -1 1.5 12345678901234567890 'a/b'; do
	call "$ADM" GET /api/v1/audit --get --data-urlencode "cursor=$c"
	t_call "audit cursor '$c': 400" 400
done
call "$ADM" GET /api/v1/audit?limit=0
t_call "audit limit=0: 400" 400

# --- full pages: the store answers at most 1000 rows a query ----------------------------------------
sqlite3 -cmd ".timeout 5000" "$D/hearth.db" "INSERT INTO models (name, created_at) VALUES ('bulk', 0);
	WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999)
	INSERT INTO devices (id, model, status, created_at) SELECT printf('bulk%04d', i), 'bulk', 'active', 0 FROM n;"
call "$RD" GET '/api/v1/devices?model=bulk&limit=1000'
t_eq "exactly 1000 devices in a page of 1000: no next page" "200 1000 None" "$ST $(js 'len(r["items"])') $(js 'r["next_cursor"]')"
sqlite3 -cmd ".timeout 5000" "$D/hearth.db" "INSERT INTO devices (id, model, status, created_at) VALUES ('bulk1000', 'bulk', 'active', 0)"
call "$RD" GET '/api/v1/devices?model=bulk&limit=1000'
t_eq "1001: a next page" "1000 bulk0999" "$(js 'len(r["items"])') $(js 'r["next_cursor"]')"
call "$RD" GET '/api/v1/devices?model=bulk&limit=1000&cursor=bulk0999'
t_eq "... holding the last one" "bulk1000 None" "$(js '" ".join(d["id"] for d in r["items"])') $(js 'r["next_cursor"]')"
sqlite3 -cmd ".timeout 5000" "$D/hearth.db" "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999)
	INSERT INTO audit_log (at, actor, action) SELECT 0, 'test', 'bulk' FROM n;"
HOUR=$(( NOW / 3600 * 3600 - 3600 ))
sqlite3 -cmd ".timeout 5000" "$D/hearth.db" "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 9999)
	INSERT INTO telemetry SELECT 'rest1', printf('f%05d', i), $HOUR, 3600, 'mean', 1, 1.0, NULL, 30 FROM n;"
call "$RD" GET /api/v1/devices/rest1/telemetry
t_eq "10000 telemetry rows are answered whole" "200 10000 False" "$ST $(js 'len(r["items"])') $(js 'r["truncated"]')"
sqlite3 -cmd ".timeout 5000" "$D/hearth.db" "INSERT INTO telemetry VALUES ('rest1', 'g', $HOUR, 3600, 'mean', 1, 1.0, NULL, 30)"
call "$RD" GET /api/v1/devices/rest1/telemetry
t_eq "10001 are cut at 10000, and it says so" "200 10000 True" "$ST $(js 'len(r["items"])') $(js 'r["truncated"]')"
call "$ADM" GET '/api/v1/audit?limit=1000'
t_eq "an audit page of 1000 with more behind it" "1000 True" "$(js 'len(r["items"])') $(js 'r["next_cursor"] == str(r["items"][-1]["id"])')"
call "$ADM" GET "/api/v1/audit?limit=1000&cursor=$(js 'r["next_cursor"]')"
t_eq "... the rest on the next" "$TOTAL None" "$(js 'len(r["items"])') $(js 'r["next_cursor"]')"

# --- the rate limit on bad tokens (last: it blocks 127.0.0.1 for 60 s) ---------------------------
codes=""
for i in $(seq 12); do call "$BAD" GET /api/v1/devices; codes="$codes $ST"; done
t_out "more than 10 bad tokens from one address: 429" "429$" echo "$codes"
t_out "... after 401s" "^ 401 401" echo "$codes"
call "$ADM" GET /api/v1/devices
t_call "... then a good token is refused too, for the window" 429
t_out "... with Retry-After" "^[Rr]etry-[Aa]fter: 60" api "$ADM" GET /api/v1/devices -D -
call "" GET /healthz
t_call "healthz still answers" 200
call "$ADM" GET /api/v1/audit
t_call "... and every other route with a token" 429
t "the block is audited once" test "$(sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM audit_log WHERE action = 'api.rate_limited' AND source = '127.0.0.1'")" = 1
t "mqtt still serves meanwhile" pub h1 '{"temperature": 20}'
t "the server is still running" kill -0 "$HPID"
stop_hearth
t_eq "the database is sound" ok "$(sqlite3 "$D/hearth.db" 'PRAGMA integrity_check')"
