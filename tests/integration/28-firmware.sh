# Firmware over REST: a release is uploaded as a stream (token checked before the body, hashed on
# the way, 0600 on disk), offered to a cohort by a rollout as signed per-device manifests, fetched by
# the device with its client certificate (Range resumes), and the rollout follows the devices' acks:
# it aborts itself past its failure threshold and cancels unfinished offers; a device that reports a
# higher security version is never offered a lower one; a percent cohort only grows when widened.
. "$(dirname "$0")/lib.sh"
D=$T/data
O=$T/out
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
for i in 1 2 3 4 5 6 7 8 9 10; do
	"$HEARTH" device add --data "$D" --id f$i --model heater --genkey --out "$O" >/dev/null 2>&1 || nok "add f$i"
done
"$HEARTH" device add --data "$D" --id o1 --model other --genkey --out "$O" >/dev/null 2>&1 || nok "add o1"
ADMIN=$(new_token fw admin)
READ=$(new_token ro read)
OPER=$(new_token op operate)
start_hearth "$D" || { nok "hearth serve starts"; exit 1; }

head -c 300000 /dev/urandom > "$T/img.bin"
SHA=$(sha256sum "$T/img.bin" | cut -d' ' -f1)
# With Expect: 100-continue, as upload clients send it: a refusal (401, 403, 413, 415...) comes
# before the body, so curl never races the server closing a connection it is still writing to.
upload() { # TOKEN QUERY [curl args]
	local tok=$1 q=$2; shift 2
	api "$tok" POST "/api/v1/models/heater/firmware?$q" -H 'Content-Type: application/octet-stream' \
		-H 'Expect: 100-continue' "$@"
}
json() { python3 -c 'import json,re,sys; d=json.loads(re.sub(r"\nHTTP [0-9]+\n?$", "", sys.stdin.read()))
for k in sys.argv[1].split("."): d=d[int(k)] if isinstance(d,list) else d[k]
print(d if not isinstance(d,(dict,list)) else json.dumps(d))' "$1"; }
uploads_left() { find "$D/firmware" -name '.upload-*' 2>/dev/null | wc -l; }

# --- releases ---------------------------------------------------------------------------------
t_out "no token: 401 before the body is read" "HTTP 401" upload "" "version=1.0" --data-binary @"$T/img.bin"
t_out "a read token may not upload: 403" "HTTP 403" upload "$READ" "version=1.0" --data-binary @"$T/img.bin"
t_out "a JSON body is refused: 415" "HTTP 415" api "$ADMIN" POST "/api/v1/models/heater/firmware?version=1.0" \
	-H 'Content-Type: application/json' -d '{}'
t_out "a wrong expected sha256 is refused: 422" "digest_mismatch" upload "$ADMIN" "version=1.0&sha256=$(printf %064d 0)" \
	--data-binary @"$T/img.bin"
t_out "a bad version string is refused: 422" "HTTP 422" upload "$ADMIN" "version=1.0%2F..%2Fx" --data-binary @"$T/img.bin"
t_out "a negative security version is refused: 422" "HTTP 422" upload "$ADMIN" "version=1.0&security_version=-1" \
	--data-binary @"$T/img.bin"
t_out "an unknown model is 404" "HTTP 404" api "$ADMIN" POST "/api/v1/models/nosuch/firmware?version=1.0" \
	-H 'Content-Type: application/octet-stream' --data-binary @"$T/img.bin"
t_out "a Content-Length over 512 MiB is refused at once: 413" "HTTP 413" upload "$ADMIN" "version=1.0" \
	-H 'Content-Length: 999999999999' --data-binary 'x'
t_eq "refused uploads leave no file behind" 0 "$(uploads_left)"

upload "$ADMIN" "version=2.0.0&security_version=2&sha256=$SHA" --data-binary @"$T/img.bin" > "$T/rel"
t_out "an admin uploads a release: 201" "HTTP 201" cat "$T/rel"
REL=$(json id < "$T/rel")
t_eq "the server's sha256 is the image's" "$SHA" "$(json sha256 < "$T/rel")"
t_eq "the size is the image's" 300000 "$(json size < "$T/rel")"
t_eq "the security version is recorded" 2 "$(json security_version < "$T/rel")"
t "the image is stored as it was sent" cmp "$T/img.bin" "$D/firmware/$REL.bin"
t_eq "the stored image is 0600" 600 "$(mode_of "$D/firmware/$REL.bin")"
t_out "the same version again is 409" "HTTP 409" upload "$ADMIN" "version=2.0.0" --data-binary @"$T/img.bin"
t_out "the release is listed for its model" "\"id\":\"$REL\"" api "$READ" GET /api/v1/models/heater/firmware
t_out "and readable by id" "\"version\":\"2.0.0\"" api "$READ" GET "/api/v1/firmware/$REL"
t_eq "successful uploads leave no temporary file either" 0 "$(uploads_left)"

# --- a rollout to a list, its manifests and the download -------------------------------------
rollout() { api "$1" POST /api/v1/rollouts -H 'Content-Type: application/json' -d "$2"; }
t_out "a read token may not start a rollout: 403" "HTTP 403" rollout "$READ" "{\"release\":\"$REL\",\"percent\":10}"
t_out "two cohorts at once are refused: 422" "HTTP 422" rollout "$OPER" "{\"release\":\"$REL\",\"percent\":10,\"tag\":\"a\"}"
t_out "an unknown release is 404" "HTTP 404" rollout "$OPER" '{"release":"0123456789abcdef0123456789abcdef","percent":10}'
t_out "a device of another model is refused: 422" "HTTP 422" rollout "$OPER" "{\"release\":\"$REL\",\"devices\":[\"o1\"]}"
rollout "$OPER" "{\"release\":\"$REL\",\"devices\":[\"f1\",\"f2\",\"f3\"],\"failure_threshold\":40}" > "$T/ro"
t_out "an operator starts a rollout to a list" "HTTP 201" cat "$T/ro"
RO=$(json id < "$T/ro")
t_out "a second rollout for the model is 409" "HTTP 409" rollout "$OPER" "{\"release\":\"$REL\",\"percent\":100}"

mosq_sub f1 -i f1 -t hearth/v1/f1/manifest/firmware -C 1 -W 10 > "$T/f1.env"
t "f1 receives a firmware manifest that verifies" "$HEARTH" manifest verify --data "$D" --envelope "$T/f1.env"
"$HEARTH" manifest verify --data "$D" --envelope "$T/f1.env" > "$T/f1.body" 2>/dev/null
t_eq "addressed to f1" f1 "$(json device < "$T/f1.body")"
t_eq "naming the image's sha256" "$SHA" "$(json sha256 < "$T/f1.body")"
t_eq "and its security version" 2 "$(json security_version < "$T/f1.body")"
t_eq "with the device's download path" "/api/v1/device/firmware/$REL" "$(json url < "$T/f1.body")"
FV=$(json version < "$T/f1.body")

dl() { # ID [curl args]: download the release as device ID
	local id=$1; shift
	curl -sS --max-time 10 --cacert "$D/certs/ca.pem" --cert "$O/$id.crt" --key "$O/$id.key" \
		-D "$T/headers" -o "$T/got" -w '%{http_code}' "$@" "https://127.0.0.1:$API_PORT/api/v1/device/firmware/$REL"
}
t_eq "f1 downloads the image with its certificate" 200 "$(dl f1)"
t "it is the image" cmp "$T/got" "$T/img.bin"
t_eq "a range resumes: 206" 206 "$(dl f1 -H 'Range: bytes=100000-')"
t_out "with its Content-Range" "Content-Range: bytes 100000-299999/300000" cat "$T/headers"
t "and exactly the rest of the image" cmp "$T/got" <(tail -c 200000 "$T/img.bin")
t_eq "a suffix range: the last 10 bytes" 206 "$(dl f1 -H 'Range: bytes=-10')"
t "are the last 10 bytes" cmp "$T/got" <(tail -c 10 "$T/img.bin")
t_eq "a range past the end is 416" 416 "$(dl f1 -H 'Range: bytes=300000-')"
t_out "saying the size" "Content-Range: bytes \*/300000" cat "$T/headers"
t_eq "a malformed range is ignored: the whole image" 200 "$(dl f1 -H 'Range: bytes=abc')"
t_eq "a device it was not offered to gets 404" 404 "$(dl f4)"
t_eq "no client certificate: 401" 401 "$(curl -sS --max-time 10 --cacert "$D/certs/ca.pem" -o /dev/null -w '%{http_code}' \
	"https://127.0.0.1:$API_PORT/api/v1/device/firmware/$REL")"

ack() { mosq_pub "$1" -i "$1" -t "hearth/v1/$1/ack" -q 1 -m "{\"type\":\"firmware\",\"version\":$2,\"status\":\"$3\"}"; }
state_of() { api "$READ" GET "/api/v1/rollouts/$1" | json "$2"; }
version_for() {
	mosq_sub "$1" -i "$1" -t "hearth/v1/$1/manifest/firmware" -C 1 -W 10 > "$T/$1.env"
	"$HEARTH" manifest verify --data "$D" --envelope "$T/$1.env" 2>/dev/null | json version
}
V2=$(version_for f2)
V3=$(version_for f3)
t "f1 says it is downloading, then installed" sh -c "$(declare -f ack mosq_pub); O='$O' PORT=$PORT; ack f1 $FV downloading && ack f1 $FV installed"
t "the rollout counts f1 installed" wait_for 5 sh -c "[ \"\$(curl -sS --cacert '$D/certs/ca.pem' -H 'Authorization: Bearer $READ' https://127.0.0.1:$API_PORT/api/v1/rollouts/$RO | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"devices\"][\"installed\"])')\" = 1 ]"
t "f1 now runs 2.0.0 with security version 2" wait_for 5 sh -c "curl -sS --cacert '$D/certs/ca.pem' -H 'Authorization: Bearer $READ' https://127.0.0.1:$API_PORT/api/v1/devices/f1 | grep -q '\"firmware\":{\"version\":\"2.0.0\",\"security_version\":2}'"
t "f2 fails" ack f2 "$V2" failed
sleep 2
t_eq "one failure of three is under 40%: still active" active "$(state_of "$RO" state)"
t "f3 fails too" ack f3 "$V3" failed
t "two of three is over 40%: the rollout aborts itself" wait_for 5 sh -c "curl -sS --cacert '$D/certs/ca.pem' -H 'Authorization: Bearer $READ' https://127.0.0.1:$API_PORT/api/v1/rollouts/$RO | grep -q '\"state\":\"aborted\"'"
t_out "saying why" "failure threshold" api "$READ" GET "/api/v1/rollouts/$RO"
t_out "per-device status" '"device":"f3","manifest_version":[0-9]*,"status":"failed"' api "$READ" GET "/api/v1/rollouts/$RO/devices"
t_out "the abort is audited" '"action":"rollout.abort"' api "$ADMIN" GET /api/v1/audit
t_eq "an abort withdraws the image: f1 may no longer download it" 404 "$(dl f1)"
t_out "an aborted rollout cannot resume: 409" "HTTP 409" api "$OPER" POST "/api/v1/rollouts/$RO/resume"

# --- a percent rollout: security versions, widening, pause, abort with cancels -----------------
t "f4 reports security version 5 on its status topic" mosq_pub f4 -i f4 -t hearth/v1/f4/status -q 1 -m '{"online":true,"firmware":"3.0.0","security_version":5}'
t_out "which the server records" '"firmware":{"version":"3.0.0","security_version":5}' api "$READ" GET /api/v1/devices/f4
rollout "$OPER" "{\"release\":\"$REL\",\"percent\":30}" > "$T/ro2"
RO2=$(json id < "$T/ro2")
t_out "a percent rollout starts" "HTTP 201" cat "$T/ro2"
sleep 3
offered() { api "$READ" GET "/api/v1/rollouts/$RO2/devices" | json items | python3 -c 'import json,sys; print(" ".join(sorted(d["device"] for d in json.load(sys.stdin))))'; }
FIRST=$(offered)
# The cohort computed here: bucket = first 4 bytes of SHA-256("<rollout>:<device>") mod 100.
cohort() { python3 -c 'import hashlib,sys
r, p = sys.argv[1], int(sys.argv[2])
print(" ".join(sorted(d for d in sys.argv[3:] if int.from_bytes(hashlib.sha256(f"{r}:{d}".encode()).digest()[:4], "big") % 100 < p)))' "$@"; }
t_eq "30% offers exactly the devices whose bucket is under 30 (f1 and f4 excepted)" "$(cohort "$RO2" 30 f2 f3 f5 f6 f7 f8 f9 f10)" "$FIRST"
t_out "a narrower percent is refused: 409" "HTTP 409" api "$OPER" PATCH "/api/v1/rollouts/$RO2" -H 'Content-Type: application/json' -d '{"percent":10}'
t_out "pause" '"state":"paused"' api "$OPER" POST "/api/v1/rollouts/$RO2/pause"
t_out "widen to 100% while paused" "HTTP 200" api "$OPER" PATCH "/api/v1/rollouts/$RO2" -H 'Content-Type: application/json' -d '{"percent":100}'
sleep 2
t_eq "a paused rollout offers nobody new" "$FIRST" "$(offered)"
t_out "resume" '"state":"active"' api "$OPER" POST "/api/v1/rollouts/$RO2/resume"
sleep 3
ALL=$(offered)
t "widening kept every device offered before" sh -c "for d in $FIRST; do echo ' $ALL ' | grep -q \" \$d \" || exit 1; done"
t_eq "all heaters but f1 (runs 2.0.0) and f4 (security 5 > 2) are offered; o1 (other model) is not" "f10 f2 f3 f5 f6 f7 f8 f9" "$ALL"
t_out "abort by hand with a reason" '"abort_reason":"bad batch"' api "$OPER" POST "/api/v1/rollouts/$RO2/abort" \
	-H 'Content-Type: application/json' -d '{"reason":"bad batch"}'
cancelled() {
	mosq_sub f5 -i f5 -t hearth/v1/f5/manifest/firmware -C 1 -W 10 > "$T/f5.env"
	"$HEARTH" manifest verify --data "$D" --envelope "$T/f5.env" 2>/dev/null | grep -q '"cancel": *true'
}
t "an unfinished device gets a signed cancel" wait_for 5 cancelled
t_out "the server kept running" "HTTP 200" api "" GET /healthz
stop_hearth
