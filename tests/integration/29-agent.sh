# The reference device (bin/hearth-agent) against the real server, end to end: it enrolls with a
# token and its own CSR, pins the endpoint's key during every handshake, and follows what hearth
# signs: a pin rotation (the agents that acknowledged reconnect on the new key; one kept offline is
# named as stranded and, after a --force switch, refuses the server), a signing-key rotation walked
# version by version by an agent that was offline for all of it, hostile manifests refused, and a
# staged firmware rollout (10% then 100%) that installs, then aborts at its failure threshold.
. "$(dirname "$0")/lib.sh"
D=$T/data
A=$T/agents
mkdir -m 0700 "$A"
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
"$HEARTH" model set --data "$D" --model heater --policy schema/policies/smart-heater.json >/dev/null || nok "model heater"
"$HEARTH" model set --data "$D" --model lamp --policy schema/policies/smart-heater.json >/dev/null || nok "model lamp"
OPER=$(new_token op operate)
ADMIN=$(new_token ad admin)
start_hearth "$D" || { nok "hearth serve starts"; exit 1; }

json() { python3 -c 'import json,re,sys; d=json.loads(re.sub(r"\nHTTP [0-9]+\n?$", "", sys.stdin.read()))
for k in sys.argv[1].split("."): d=d[int(k)] if isinstance(d,list) else d[k]
print(d if not isinstance(d,(dict,list)) else json.dumps(d))' "$1"; }
enroll() { # NAME MODEL
	local tok
	tok=$(api "$OPER" POST /api/v1/enrollment-tokens -H 'Content-Type: application/json' -d "{\"model\":\"$2\"}" | json token)
	"$AGENT" enroll --state "$A/$1" --api "127.0.0.1:$API_PORT" --ca "$D/certs/ca.pem" --token "$tok"
}
id_of() { "$AGENT" show --state "$A/$1" | sed -n 's/^id //p'; }
declare -A APID
run_agent() { # NAME [ARGS]
	local n=$1; shift
	"$AGENT" run --state "$A/$n" --mqtt "127.0.0.1:$PORT" --api "127.0.0.1:$API_PORT" --exit-after 300 "$@" \
		>>"$T/$n.log" 2>&1 &
	APID[$n]=$!; BG_PIDS="$BG_PIDS $!"
}
stop_agent() {
	local p=${APID[$1]} i=0
	kill -TERM "$p" 2>/dev/null
	while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	wait "$p" 2>/dev/null
}
logged() { grep -q -- "$2" "$T/$1.log"; }     # NAME PATTERN
count_in() { grep -c -- "$2" "$T/$1.log"; }   # NAME PATTERN

# --- enrollment -----------------------------------------------------------------------------------
for n in a1 a2 a3; do
	t "$n enrolls with a one-time token and its own CSR" enroll $n heater
done
t_eq "its key is 0600" 600 "$(mode_of "$A/a1/device.key")"
t_out "it trusts the endpoint's pin and the manifest key" "^pin sha256/" "$AGENT" show --state "$A/a1"
t_fails "a state directory enrolls once" enroll a1 heater
tok=$(api "$OPER" POST /api/v1/enrollment-tokens -H 'Content-Type: application/json' -d '{"model":"heater"}' | json token)
t_fails "a wrong CA is refused before the token is sent" "$AGENT" enroll --state "$A/x" --api "127.0.0.1:$API_PORT" \
	--ca "$T/serve.1.log" --token "$tok"
A1=$(id_of a1); A2=$(id_of a2); A3=$(id_of a3)
t_out "the server knows a1 as a heater" '"model":"heater"' api "$OPER" GET "/api/v1/devices/$A1"

for n in a1 a2 a3; do run_agent $n; done
for n in a1 a2 a3; do t "$n connects over mTLS with the endpoint pinned" wait_for 15 logged $n "agent: connected"; done
t "a3 reports its firmware (and so counts as seen)" wait_for 5 sh -c \
	"curl -sS --cacert '$D/certs/ca.pem' -H 'Authorization: Bearer $OPER' https://127.0.0.1:$API_PORT/api/v1/devices/$A3 | grep -q '\"version\":\"1.0.0\"'"
stop_agent a3

# --- pin rotation, gated on readiness ----------------------------------------------------------
t_out "rotate announces a pin set" "pin set version 1 announced" "$HEARTH" pins rotate --data "$D"
t "a1 applies the pin set" wait_for 10 logged a1 "agent: pins v1 applied"
t "a2 applies the pin set" wait_for 10 logged a2 "agent: pins v1 applied"
t_out "status: a3 (offline) has not acknowledged" "$A3" "$HEARTH" pins status --data "$D"
t_fails "switch refuses while a3 has not" "$HEARTH" pins switch --data "$D"
t_out "switch --force names the device it strands" "$A3" "$HEARTH" pins switch --data "$D" --force --yes
t "a2, still connected, gets the fresh pin set" wait_for 10 logged a2 "agent: pins v2 applied"
sleep 6 # the server serves the new certificate within 5 s
stop_agent a1
: > "$T/a1.log"
run_agent a1
t "a1 reconnects on the new key" wait_for 15 logged a1 "agent: connected"
t_eq "without any pin refusal" 0 "$(count_in a1 'not pinned')"
: > "$T/a3.log"
run_agent a3
t "a3, which never got the new pin set, refuses the server" wait_for 15 logged a3 "agent: endpoint key not pinned"
sleep 2
t_eq "and never connects" 0 "$(count_in a3 'agent: connected')"
stop_agent a3

# The emergency path: the next key is compromised, the endpoint moves to the announced backup.
pin_of_key() { openssl pkey -in "$1" -pubout -outform der | openssl dgst -sha256 -binary | base64 | sed 's|^|sha256/|'; }
BACKUP=$(pin_of_key "$D/keys/endpoint-backup.key")
OLD_NEXT=$(pin_of_key "$D/keys/endpoint-next.key")
t_out "switch --backup moves the endpoint to the backup key" "former backup key" \
	"$HEARTH" pins switch --data "$D" --backup --force --yes
t "a2 gets the set that follows" wait_for 10 logged a2 "agent: pins v3 applied"
t "the compromised next key is replaced" test "$(pin_of_key "$D/keys/endpoint-next.key")" != "$OLD_NEXT"
t_out "and left the announced set" "^pin " "$AGENT" show --state "$A/a2"
t_eq "a2 no longer pins it" 0 "$("$AGENT" show --state "$A/a2" | grep -c "$OLD_NEXT")"
sleep 6
t_eq "the endpoint serves the former backup key" "$BACKUP" "$(timeout 10 openssl s_client -connect 127.0.0.1:"$PORT" \
	-CAfile "$D/certs/ca.pem" -cert "$A/a1/device.crt" -key "$A/a1/device.key" </dev/null 2>/dev/null |
	openssl x509 -noout -pubkey | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64 | sed 's|^|sha256/|')"
stop_agent a1
: > "$T/a1.log"
run_agent a1
t "a1 reconnects on the backup key" wait_for 15 logged a1 "agent: connected"
t_eq "without any pin refusal" 0 "$(count_in a1 'not pinned')"

# --- signing-key rotation walked by an agent that was offline -----------------------------------
stop_agent a2
for i in 1 2 3; do
	t "keys rotate ($i)" "$HEARTH" keys rotate --data "$D"
done
t "a1 (online) applies keys v3" wait_for 10 logged a1 "agent: keys v3 applied"
: > "$T/a2.log"
run_agent a2
t "a2 comes back and applies keys v1 (fetched)" wait_for 15 logged a2 "agent: keys v1 applied"
t "then v2" wait_for 5 logged a2 "agent: keys v2 applied"
t "then v3" wait_for 5 logged a2 "agent: keys v3 applied"
t_eq "in that order" "1 2 3" "$(sed -n 's/.*agent: keys v\([0-9]*\) applied.*/\1/p' "$T/a2.log" | tr '\n' ' ' | sed 's/ $//')"
SERVER_KEY=$("$HEARTH" keys show --data "$D" | grep -o '[0-9a-f]\{64\}' | head -1)
t_eq "a2 now trusts exactly the server's signing key" "$SERVER_KEY" "$("$AGENT" show --state "$A/a2" | sed -n 's/^keyid //p')"

# --- hostile manifests: what the agent's core decides (hearth-agent check uses the same code) ----
now=$(date +%s)
PINS=$("$AGENT" show --state "$A/a1" | sed -n 's/^pin //p' | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read().split()))')
PV=$("$AGENT" show --state "$A/a1" | sed -n 's/^pins_version //p')
KV=$("$AGENT" show --state "$A/a1" | sed -n 's/^keys_version //p')
body() { # FILE TYPE VERSION EXPIRES EXTRA-JSON-FIELDS
	printf '{"type":"%s","device":"%s","version":%s,"issued":%s,"expires":%s%s}' "$2" "$A1" "$3" "$now" "$4" "$5" > "$1"
}
sign() { "$HEARTH" manifest sign --data "$D" --body "$1" --out "$2" >/dev/null; }
check() { "$AGENT" check --state "$A/a1" --type "$1" --envelope "$2"; }
FIRST=$(echo "$PINS" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0])')
body "$T/good.json" pins $((PV + 10)) $((now + 3600)) ",\"pins\":$PINS,\"current\":\"$FIRST\""
sign "$T/good.json" "$T/good.env"
t_out "a well-formed pin set above the applied version is accepted" "^accepted" check pins "$T/good.env"
python3 - "$T/good.env" "$T/tampered.env" <<'PY'
import base64, json, sys
e = json.load(open(sys.argv[1]))
b = bytearray(base64.b64decode(e["payload"])); b[b.index(b'"version":') + 10] ^= 1
e["payload"] = base64.b64encode(bytes(b)).decode(); json.dump(e, open(sys.argv[2], "w"))
PY
t_out "a tampered one is refused" "^rejected: .*signature" check pins "$T/tampered.env"
curl -sS --max-time 10 --cacert "$D/certs/ca.pem" --cert "$A/a1/device.crt" --key "$A/a1/device.key" \
	"https://127.0.0.1:$API_PORT/api/v1/device/manifests/keys" > "$T/replay.env"
t_out "a replay of the applied keys manifest is refused" "^rejected: version" check keys "$T/replay.env"
body "$T/lower.json" pins $((PV - 1)) $((now + 3600)) ",\"pins\":$PINS,\"current\":\"$FIRST\""
sign "$T/lower.json" "$T/lower.env"
t_out "a lower version is refused" "^rejected: version" check pins "$T/lower.env"
body "$T/expired.json" pins $((PV + 10)) $((now - 10)) ",\"pins\":$PINS,\"current\":\"$FIRST\""
sign "$T/expired.json" "$T/expired.env"
t_out "an expired one is refused" "^rejected: expired" check pins "$T/expired.env"
body "$T/empty.json" pins $((PV + 10)) $((now + 3600)) ',"pins":[],"current":""'
sign "$T/empty.json" "$T/empty.env"
t_out "an empty pin set is refused" "^rejected: .*empty pin set" check pins "$T/empty.env"
"$HEARTH" init --data "$T/other" >/dev/null 2>&1
"$HEARTH" manifest sign --data "$T/other" --body "$T/good.json" --out "$T/other.env" >/dev/null
t_out "one signed by a key it does not trust is refused" "^rejected: .*not enough trusted signatures" check pins "$T/other.env"
body "$T/skip.json" keys $((KV + 2)) $((now + 3600)) ',"keys":[],"threshold":1'
sign "$T/skip.json" "$T/skip.env"
t_out "a keys manifest that skips a version is refused" "^rejected: .*skips" check keys "$T/skip.env"
body "$T/rollback.json" firmware 999999 $((now + 3600)) ",\"model\":\"heater\",\"release\":\"r\",\"rollout\":\"o\",\"firmware_version\":\"0.9\",\"security_version\":0,\"sha256\":\"$(printf %064d 0)\",\"size\":1,\"url\":\"/api/v1/device/firmware/r\""
sign "$T/rollback.json" "$T/rollback.env"
cp -a "$A/a1" "$T/a1-sec3"
sed -i 's/^security_version .*/security_version 3/' "$T/a1-sec3/trust"
t_out "a firmware below the device's security version is refused" "^rejected: .*rollback" \
	"$AGENT" check --state "$T/a1-sec3" --type firmware --envelope "$T/rollback.env"
# One key counted twice: a device that needs two distinct keys gets two signatures by one.
cp -a "$A/a1" "$T/a1-two"
OTHER_SPKI=$(openssl pkey -in "$T/other/keys/manifest.key" -pubout -outform der | base64 -w0)
python3 - "$T/a1-two/trust" "$OTHER_SPKI" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
key = [l for l in lines if l.startswith("key ")][0]
out = []
for l in lines:
    out.append("threshold 2" if l.startswith("threshold ") else l)
    if l == key:
        out.append("key " + sys.argv[2])
open(sys.argv[1], "w").write("\n".join(out) + "\n")
PY
t_out "the doctored state needs two keys" "^threshold 2" "$AGENT" show --state "$T/a1-two"
python3 - "$T/good.env" "$T/twice.env" <<'PY'
import json, sys
e = json.load(open(sys.argv[1])); e["signatures"] = e["signatures"] * 2; json.dump(e, open(sys.argv[2], "w"))
PY
t_out "one key's signature twice does not make two" "^rejected: .*not enough trusted signatures" \
	"$AGENT" check --state "$T/a1-two" --type pins --envelope "$T/twice.env"

# --- a staged firmware rollout: 10%, then 100%, aborted at its threshold -----------------------
for i in 1 2 3 4 5 6 7 8 9 10; do enroll r$i lamp >/dev/null 2>&1 || nok "r$i enrolls"; done
head -c 65536 /dev/urandom > "$T/lamp.bin"
api "$ADMIN" POST "/api/v1/models/lamp/firmware?version=2.0.0&security_version=1" -H 'Content-Type: application/octet-stream' \
	--data-binary @"$T/lamp.bin" > "$T/rel"
REL=$(json id < "$T/rel")
t "a lamp release is uploaded" test -n "$REL"
# The 10% cohort is a hash of the rollout's id: start rollouts until one holds a device (bounded).
cohort() { python3 -c 'import hashlib,sys
r, p = sys.argv[1], int(sys.argv[2])
print(" ".join(d for d in sys.argv[3:] if int.from_bytes(hashlib.sha256(f"{r}:{d}".encode()).digest()[:4], "big") % 100 < p))' "$@"; }
declare -A NAME_OF
IDS=""
for i in 1 2 3 4 5 6 7 8 9 10; do id=$(id_of r$i); NAME_OF[$id]=r$i; IDS="$IDS $id"; done
RO="" ; STAGE1=""
for try in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
	RO=$(api "$OPER" POST /api/v1/rollouts -H 'Content-Type: application/json' \
		-d "{\"release\":\"$REL\",\"percent\":10,\"failure_threshold\":20}" | json id)
	STAGE1=$(cohort "$RO" 10 $IDS)
	[ -n "$STAGE1" ] && break
	api "$OPER" POST "/api/v1/rollouts/$RO/abort" >/dev/null
done
t "a 10% rollout holds a device" test -n "$STAGE1"
# Three devices outside the first stage will fail to install.
FAILING=$(for id in $IDS; do case " $STAGE1 " in *" $id "*) ;; *) echo "$id";; esac; done | head -3 | tr '\n' ' ')
for id in $IDS; do
	case " $FAILING " in *" $id "*) run_agent "${NAME_OF[$id]}" --fail-install;; *) run_agent "${NAME_OF[$id]}";; esac
done
for id in $STAGE1; do
	t "stage 1: ${NAME_OF[$id]} installs" wait_for 20 logged "${NAME_OF[$id]}" "agent: firmware v[0-9]* installed 2.0.0"
	t "and holds the image" cmp "$A/${NAME_OF[$id]}/firmware.bin" "$T/lamp.bin"
done
rollout_field() { api "$OPER" GET "/api/v1/rollouts/$RO" | json "$1"; }
t "the rollout counts them installed" wait_for 5 sh -c "[ \"\$(curl -sS --cacert '$D/certs/ca.pem' -H 'Authorization: Bearer $OPER' https://127.0.0.1:$API_PORT/api/v1/rollouts/$RO | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"devices\"][\"installed\"])')\" = $(echo $STAGE1 | wc -w) ]"
t_eq "stage 1 offered nobody else" "$(echo $STAGE1 | wc -w)" "$(api "$OPER" GET "/api/v1/rollouts/$RO/devices" | json items | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
t_eq "still active" active "$(rollout_field state)"
t_out "widen to 100%" "HTTP 200" api "$OPER" PATCH "/api/v1/rollouts/$RO" -H 'Content-Type: application/json' -d '{"percent":100}'
for id in $FAILING; do
	t "${NAME_OF[$id]} fails to install and says so" wait_for 20 logged "${NAME_OF[$id]}" "agent: firmware v[0-9]* failed"
done
t "three failures of ten are over 20%: the rollout aborts itself" wait_for 10 sh -c \
	"curl -sS --cacert '$D/certs/ca.pem' -H 'Authorization: Bearer $OPER' https://127.0.0.1:$API_PORT/api/v1/rollouts/$RO | grep -q '\"state\":\"aborted\"'"
t_out "saying why" "failure threshold" api "$OPER" GET "/api/v1/rollouts/$RO"
t_eq "the failures are counted" 3 "$(rollout_field devices.failed)"
for id in $FAILING; do
	t "${NAME_OF[$id]} kept its old firmware" sh -c "'$AGENT' show --state '$A/${NAME_OF[$id]}' | grep -q '^firmware_version 1.0.0'"
done
for id in $STAGE1; do
	t "${NAME_OF[$id]} runs 2.0.0" sh -c "'$AGENT' show --state '$A/${NAME_OF[$id]}' | grep -q '^firmware_version 2.0.0'"
done

for n in "${!APID[@]}"; do stop_agent "$n"; done
t_out "the server kept running" "HTTP 200" api "" GET /healthz
stop_hearth
