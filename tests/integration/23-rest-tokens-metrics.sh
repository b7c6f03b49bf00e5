# API tokens over their life (expiry, revocation, last use, scopes) and /metrics in Prometheus
# text format, counting what the endpoint did.
. "$(dirname "$0")/lib.sh"
D=$T/data
O=$T/out
"$HEARTH" init --data "$D" > "$T/init.out" 2>&1 || { nok "init"; exit 1; }
FIRST=$(tail -1 "$T/init.out")
t_out "init prints the first admin token once, alone on its last line" "^hth_[0-9a-f]{16}_[0-9a-f]{64}$" tail -1 "$T/init.out"
t_out "it is listed as 'admin', scope admin, never used" "^admin +admin +active +- +-$" "$HEARTH" token list --data "$D"
t_eq "the database holds its hash, not the token" 0 "$(grep -c "${FIRST#hth_*_}" "$D/hearth.db" 2>/dev/null || true)"
t "an interactive init leaves no token file" test ! -e "$D/admin-token"
# The unattended first start (a container): serve initialises, logs the token and keeps it in a
# 0600 file for whoever reads it later.
start_hearth "$T/first" || nok "serve initialises an empty directory"
stop_hearth
t_eq "serve's first start writes the token to DIR/admin-token, 0600" 600 "$(mode_of "$T/first/admin-token")"
t_eq "it is the token the log shows" "$(grep -A1 'first admin API token' "$HLOG" | tail -1)" "$(cat "$T/first/admin-token")"
t_out "and a real one" "^admin +admin +active" "$HEARTH" token list --data "$T/first"
"$HEARTH" model set --data "$D" --model heater --policy schema/policies/smart-heater.json >/dev/null 2>&1 || nok "model set"
"$HEARTH" device add --data "$D" --id h1 --model heater --genkey --out "$O" >/dev/null 2>&1 || nok "add h1"
READ=$(new_token viewer read)
EXP=$(new_token shortlived read)
t_fails "a second token with the same name is refused" "$HEARTH" token add --data "$D" --name viewer --scope read
t_fails "an unknown scope is refused" "$HEARTH" token add --data "$D" --name x --scope root
start_hearth "$D" || { nok "hearth serve starts"; exit 1; }

t_out "the first admin token works" "HTTP 200" api "$FIRST" GET /api/v1/audit
t_out "a read token reads" "HTTP 200" api "$READ" GET /api/v1/devices
t_out "but cannot revoke (403)" "HTTP 403" api "$READ" POST /api/v1/devices/h1/revoke
t_out "nor read the audit log (403)" "HTTP 403" api "$READ" GET /api/v1/audit
sqlite3 "$D/hearth.db" "UPDATE api_tokens SET expires_at = 1000 WHERE name = 'shortlived'"
t_out "an expired token is refused (401)" "HTTP 401" api "$EXP" GET /api/v1/devices
"$HEARTH" token revoke --data "$D" --name viewer >/dev/null
t_out "a revoked token is refused at once (401)" "HTTP 401" api "$READ" GET /api/v1/devices
t_out "token list shows it revoked, and when the admin token was last used" \
	"^admin +admin +active +- +20[0-9]{2}-" "$HEARTH" token list --data "$D"
t_out "... the revoked one as revoked" "^viewer +read +revoked" "$HEARTH" token list --data "$D"
t_fails "a token is never in the server log" grep -qF "${FIRST#hth_*_}" "$HLOG"

# /metrics after some MQTT traffic: two telemetry messages (one with a dropped sensitive field), a
# refused handshake.
pub() { mosq_pub h1 -i h1 -t hearth/v1/h1/telemetry -q 1 -m "$1"; }
t "telemetry is published" pub '{"temperature": 21.5, "co2_ppm": 900}'
t "... twice" pub '{"temperature": 22}'
t_fails "a handshake without a client certificate is refused" \
	timeout 10 mosquitto_pub -h 127.0.0.1 -p "$PORT" --cafile "$O/ca.pem" -i h1 -t x -m y
sleep 0.5 # the loop publishes its counters every 250 ms
api "$FIRST" GET /metrics > "$T/metrics"
m() { awk -v k="$1" '$1 == k { print $2 }' "$T/metrics"; }
t_out "metrics are Prometheus text with HELP and TYPE" "^# TYPE hearth_messages_total counter$" cat "$T/metrics"
t "messages in counted (>= 2)" test "$(m 'hearth_messages_total{direction="in"}')" -ge 2
t "full handshakes counted (>= 2)" test "$(m 'hearth_handshakes_total{kind="full"}')" -ge 2
t "the refused handshake counted" test "$(m 'hearth_refused_total{reason="handshake"}')" -ge 1
t_eq "telemetry messages minimized" 2 "$(m hearth_telemetry_messages_total)"
t_eq "the dropped field counted" 1 "$(m hearth_telemetry_fields_dropped_total)"
t "group commits timed" test "$(m hearth_store_commit_seconds_count)" -ge 1
t_eq "the histogram's +Inf bucket is the count" "$(m hearth_store_commit_seconds_count)" \
	"$(m 'hearth_store_commit_seconds_bucket{le="+Inf"}')"
t_out "metrics need a token" "HTTP 401" api "" GET /metrics
# A few handshakes, far fewer than a storm: once nothing has opened or closed for 2 s, the memory
# they left goes back anyway (the tail of a burst is not kept for good).
returned_ge() {
	local v
	v=$(api "$FIRST" GET /metrics | awk -v k="hearth_memory_returned_total{by=\"$1\"}" '$1 == k { print $2 }')
	[ "${v:-0}" -ge "$2" ]
}
t "the event loop gave memory back after the lull" wait_for 10 returned_ge loop 1
if [ "$(nproc)" -ge 2 ]; then # handshake threads: one per core, none on one core
	t "... and so did a handshake thread" wait_for 10 returned_ge handshake 1
fi

# The endpoint certificate's renewal reaches the REST API too (new connections get the new one).
aserial() { timeout 10 openssl s_client -connect 127.0.0.1:"$API_PORT" -CAfile "$D/certs/ca.pem" </dev/null 2>/dev/null |
	openssl x509 -noout -serial; }
old=$(aserial)
t "ca renew-endpoint" "$HEARTH" ca renew-endpoint --data "$D"
kill -HUP "$HPID"
t "the REST API reloads it" wait_for 10 grep -q "REST API serves the renewed endpoint certificate" "$HLOG"
new=$(aserial)
t "the API presents the new certificate ($old -> $new)" test -n "$new" -a "$new" != "$old"
t_out "and still answers, verifiably" "HTTP 200" api "$FIRST" GET /api/v1/devices
stop_hearth
t_fails "no sanitizer report" grep -Eq 'Sanitizer|runtime error:' "$T"/serve.*.log
