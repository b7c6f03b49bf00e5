# The MQTT endpoint driven through libmosquitto (tests/integration/mosq_client.c, $MOSQ_CLIENT):
# one connection subscribes to its own subtree and round-trips QoS 1 messages in order, a retained
# status outlives its connection, and the ACL closes a spoofing connection and refuses a foreign
# subscription, all as another client library sees it.
. "$(dirname "$0")/lib.sh"
[ -x "${MOSQ_CLIENT:-}" ] || { nok "MOSQ_CLIENT names the built tests/integration/mosq_client.c"; exit 1; }
D=$T/data
O=$T/out
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
for id in dev-a dev-b; do
	"$HEARTH" device add --data "$D" --id $id --model heater --genkey --out "$O" >/dev/null 2>&1 || nok "add $id"
done
start_hearth "$D" || { nok "hearth serve starts"; exit 1; }
ok "hearth serve listens on port $PORT"

# client ID [--cafile CA] MODE ARGS...: the libmosquitto client as device ID; its output goes to
# $T/client.out and its exit status to $rc.
client() {
	local id=$1; shift
	timeout 60 "$MOSQ_CLIENT" --port "$PORT" --cafile "$O/ca.pem" --cert "$O/$id.crt" \
		--key "$O/$id.key" --id "$id" --timeout 20 "$@" >"$T/client.out" 2>&1
	rc=$?
}
# t_client DESC STATUS REGEX: the last client run exited with STATUS and printed REGEX, with no
# sanitizer report.
t_client() {
	cp "$T/client.out" "$T/.out"
	if [ "$rc" -ne "$2" ]; then nok "$1 (exit $rc, wanted $2)"
	elif sanitized; then nok "$1 (sanitizer report)"
	elif ! grep -Eq -- "$3" "$T/.out"; then nok "$1 (no /$3/)"
	else ok "$1"; fi
}

client dev-a roundtrip --count 200
t_client "200 QoS 1 publishes are all acknowledged and echoed back in order" 0 \
	"^published 200 acked 200 received 200$"

client dev-a retained
t_client "a retained status is delivered, flagged retained, to a later connection" 0 \
	"^retained hearth/v1/dev-a/status retained-[0-9a-f]{16} received with the retain flag$"
payload=$(sed -n 's/^retained [^ ]* \([^ ]*\) .*/\1/p' "$T/client.out")
t_eq "mosquitto_sub sees the same retained status" "hearth/v1/dev-a/status $payload" \
	"$(mosq_sub dev-a -i dev-a -t hearth/v1/dev-a/status -C 1 -W 5 -v 2>&1)"

client dev-a forbidden --other dev-b
t_client "a publish to another device's topic closes the connection without a PUBACK" 0 \
	"^publish to hearth/v1/dev-b/status: closed by the server"
t_client "a subscription to another device's subtree is granted 128" 0 \
	"^subscribe to hearth/v1/dev-b/#: granted 128$"
t "the log says why the connection went" grep -q "dev-a .*PUBLISH to a topic outside the device's own" "$HLOG"
t_eq "the spoofed status was not retained" "" \
	"$(mosq_sub dev-b -i dev-b -t hearth/v1/dev-b/status -C 1 -W 2 -v 2>/dev/null)"

# Controls: the client's checks can fail.
client dev-a --timeout 3 forbidden --other dev-a
t_client "control: a publish the ACL allows fails the forbidden mode" 1 "did not close the connection"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=other-root \
	-days 1 -keyout "$T/other-ca.key" -out "$T/other-ca.pem" >/dev/null 2>&1
client dev-a --cafile "$T/other-ca.pem" roundtrip --count 1
t_client "control: the endpoint is verified (a foreign CA fails the handshake)" 1 "certificate verify failed"

t "the server is still running" kill -0 "$HPID"
stop_hearth
t "it stopped cleanly on SIGTERM" grep -q "shutting down" "$HLOG"
t_fails "its log has no sanitizer report" grep -Eq 'Sanitizer|runtime error:' "$HLOG"
