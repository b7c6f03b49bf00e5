# The REST API under hostile HTTP: oversized headers and bodies (with and without a length), a
# client that trickles its request (slowloris), too many connections from one address, path
# tricks. Each gets a clear refusal; the API and the MQTT endpoint keep serving.
. "$(dirname "$0")/lib.sh"
D=$T/data
O=$T/out
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
"$HEARTH" device add --data "$D" --id d1 --model m --genkey --out "$O" >/dev/null 2>&1 || nok "add d1"
TOKEN=$(new_token ops admin)
start_hearth "$D" || { nok "hearth serve starts"; exit 1; }
hraw() { timeout 60 python3 "$(dirname "$0")/http_raw.py" --port "$API_PORT" --cafile "$D/certs/ca.pem" "$@"; }
alive() { api "" GET /healthz | tail -1; }

big=$(head -c 70000 /dev/zero | tr '\0' a)
code=$(curl -sS --max-time 10 --cacert "$D/certs/ca.pem" -o /dev/null -w '%{http_code}' -H "X-Big: $big" \
	"https://127.0.0.1:$API_PORT/healthz" 2>/dev/null)
t "a 70 KB header is refused (413/431: $code)" test "$code" = 431 -o "$code" = 413
t_eq "the API still answers" "HTTP 200" "$(alive)"
head -c 70000 /dev/zero | tr '\0' a > "$T/big"
t_out "a 70 KB body with its length is refused (413)" "HTTP 413" api "$TOKEN" PUT /api/v1/models/m \
	-H 'Content-Type: application/json' --data-binary @"$T/big"
t_out "... and chunked, without a length (413)" "HTTP 413" api "$TOKEN" PUT /api/v1/models/m \
	-H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @"$T/big"
t_out "a wrong content type is refused (415)" "HTTP 415" api "$TOKEN" PUT /api/v1/models/m \
	-H 'Content-Type: text/plain' --data-binary '{}'

t_out "a trickled request is cut off by the connection timeout" "^closed after" \
	hraw slow --send 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n' --wait 25
hraw many --count 24 --hold 1 > "$T/many"
read -r open refused answered < <(sed 's/[a-z]*=//g' "$T/many")
t "at most 16 connections at once from one address ($(cat "$T/many"))" test "$open" -le 16 -a "$refused" -ge 8
t_eq "those admitted are served" "$open" "$answered"
t_eq "the API still answers" "HTTP 200" "$(alive)"

t_out "a dot-dot path is no way around the routes (404)" "HTTP 404" \
	api "$TOKEN" GET /api/v1/devices/../../healthz --path-as-is
t_out "nor an escaped one (404)" "HTTP 404" api "$TOKEN" GET '/api/v1/devices/..%2f..%2fhealthz'
t_out "a NUL in the path reaches no device (400)" "HTTP 400" api "$TOKEN" GET '/api/v1/devices/d1%00x'
t_out "nor a NUL in a filter" '"items":\[\]' api "$TOKEN" GET '/api/v1/devices?model=m%00x'
t_out "the device is there without the tricks" '"id":"d1"' api "$TOKEN" GET /api/v1/devices/d1
t_out "the MQTT endpoint kept serving devices" "received PUBACK" \
	mosq_pub d1 -i d1 -t hearth/v1/d1/status -m up -q 1 -d
stop_hearth
t_fails "no sanitizer report" grep -Eq 'Sanitizer|runtime error:' "$T"/serve.*.log
