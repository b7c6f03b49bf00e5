# A device renews its certificate over HTTPS with its client certificate (mTLS), without any API
# token: POST /api/v1/device/renew with a new CSR.
. "$(dirname "$0")/lib.sh"
D=$T/data
O=$T/out
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
for id in d1 d2; do
	"$HEARTH" device add --data "$D" --id $id --model heater --genkey --out "$O" >/dev/null 2>&1 || nok "add $id"
done
"$HEARTH" client add --data "$D" --id ha --role integration --genkey --out "$O" >/dev/null 2>&1 || nok "add ha"
ADMIN=$(new_token ops admin)
start_hearth "$D" || { nok "hearth serve starts"; exit 1; }
# as ID [CURL ARGS]: the renewal request with ID's certificate and key from $O.
renew() {
	local id=$1; shift
	api "" POST /api/v1/device/renew --cert "$O/$id.crt" --key "$O/$id.key" -H 'Content-Type: application/json' "$@"
}
# renew1: the same, on one line (so that t_out can match the body and the status together).
renew1() { renew "$@" | tr '\n' ' '; }
body() { python3 -c 'import json, sys; print(json.dumps({"csr": open(sys.argv[1]).read()}))' "$1"; }
make_csr "$T/new.csr"
body "$T/new.csr" > "$T/new.json"
# A device's first certificate is fresh: renewing at once is refused (at most once an hour).
t_out "a renewal within the hour of the last certificate is refused (409)" '"too_soon".*HTTP 409' \
	renew1 d1 --data-binary @"$T/new.json"
sqlite3 "$D/hearth.db" "UPDATE certificates SET not_before = not_before - 7200 WHERE device_id IN ('d1', 'd2')"
t_out "without a client certificate: 401" 'HTTP 401' api "" POST /api/v1/device/renew \
	-H 'Content-Type: application/json' --data-binary @"$T/new.json"
t_out "an API token is no substitute for a device certificate" 'HTTP 401' api "$ADMIN" POST /api/v1/device/renew \
	-H 'Content-Type: application/json' --data-binary @"$T/new.json"
t_out "an integration client's certificate is not a device's" 'HTTP 401' renew ha --data-binary @"$T/new.json"
renew d1 --data-binary @"$T/new.json" > "$T/renew.out"
t_out "the device renews with its certificate and a new CSR (201)" 'HTTP 201' cat "$T/renew.out"
head -n -1 "$T/renew.out" | python3 -c 'import json, sys; r = json.load(sys.stdin); open(sys.argv[1], "w").write(r["certificate"]); open(sys.argv[2], "w").write(r["ca_chain"])' "$T/d1new.crt" "$T/chain.pem"
t "the new certificate verifies against the returned chain (openssl verify)" openssl verify -CAfile "$T/chain.pem" "$T/d1new.crt"
t_out "its CN is the device's id" "CN ?= ?d1" openssl x509 -in "$T/d1new.crt" -noout -subject
t_eq "it certifies the key of the new CSR" "$(openssl req -in "$T/new.csr" -noout -pubkey)" "$(openssl x509 -in "$T/d1new.crt" -noout -pubkey)"
t_eq "it is a new serial" 0 "$(grep -c "$(openssl x509 -in "$O/d1.crt" -noout -serial | cut -d= -f2)" <(openssl x509 -in "$T/d1new.crt" -noout -serial))"
t_eq "the store records it as d1's" 2 "$(sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM certificates WHERE device_id = 'd1' AND status = 'valid'")"
t_eq "the renewal is audited as the device, from its address" "device:d1|127.0.0.1|device.renew" \
	"$(sqlite3 "$D/hearth.db" "SELECT actor, source, action FROM audit_log WHERE action = 'device.renew'")"
t_out "the new certificate and key connect over MQTT" "received PUBACK" \
	timeout 20 mosquitto_pub -h 127.0.0.1 -p "$PORT" --cafile "$O/ca.pem" --cert "$T/d1new.crt" --key "$T/new.csr.key" \
	-i d1 -t hearth/v1/d1/status -m renewed -q 1 -d
t_out "a second renewal right after is refused" 'HTTP 409' renew d1 --data-binary @"$T/new.json"
echo '{"csr": "-----BEGIN CERTIFICATE REQUEST-----\ngarbage\n-----END CERTIFICATE REQUEST-----\n"}' > "$T/bad.json"
t_out "a bad CSR is refused (422)" '"invalid_csr".*HTTP 422' renew1 d2 --data-binary @"$T/bad.json"
t_out "unknown fields are refused (422)" 'HTTP 422' renew d2 --data-binary '{"csr": "x", "id": "d1"}'
t_out "the CSR's subject does not choose the id: d2 gets d2" '"device_id":"d2"' renew d2 --data-binary @"$T/new.json"
# A revoked device cannot renew, even with a certificate that has not expired.
"$HEARTH" device revoke --data "$D" --id d2 >/dev/null 2>&1
t_out "a revoked device cannot renew" 'HTTP 401' renew d2 --data-binary @"$T/new.json"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=d1 -days 2 \
	-keyout "$T/self.key" -out "$T/self.crt" 2>/dev/null
t_out "a self-made certificate with the CN of an active device is refused" 'HTTP 401' \
	api "" POST /api/v1/device/renew --cert "$T/self.crt" --key "$T/self.key" \
	-H 'Content-Type: application/json' --data-binary @"$T/new.json"
stop_hearth
t_fails "no sanitizer report" grep -Eq 'Sanitizer|runtime error:' "$T"/serve.*.log
