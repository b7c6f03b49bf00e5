# The MQTT endpoint with peers nobody here wrote: mosquitto_pub and mosquitto_sub over mTLS.
. "$(dirname "$0")/lib.sh"
D=$T/data
O=$T/out
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
for id in dev-a dev-b; do
	"$HEARTH" device add --data "$D" --id $id --model heater --genkey --out "$O" >/dev/null 2>&1 || nok "add $id"
done
start_hearth "$D" || { nok "hearth serve starts"; exit 1; }
ok "hearth serve listens on port $PORT"

t_out "a QoS 1 publish gets its PUBACK" "received PUBACK" \
	mosq_pub dev-a -i dev-a -t hearth/v1/dev-a/telemetry -m '{"t":21.5}' -q 1 -d
head -c 150000 /dev/urandom | base64 -w0 > "$T/big"
t_out "a 200 KB publish (several read turns) gets its PUBACK" "received PUBACK" \
	mosq_pub dev-a -i dev-a -t hearth/v1/dev-a/telemetry -f "$T/big" -q 1 -d
payload=$(head -c 75000 /dev/urandom | base64 -w0)
t_raw "a device subscribed to its own ack topic gets its 100 KB message back" "recv PUBLISH flags=2" \
	dev-a connect:dev-a::clean expect:CONNACK subscribe:hearth/v1/dev-a/ack:1 expect:SUBACK:000101 \
	publish:hearth/v1/dev-a/ack:"$payload":1 expect:PUBLISH expect:PUBACK:0002
# Raw telemetry goes to minimization only: never back out, not even to the device itself.
t_raw "its raw telemetry is not echoed to it (subscribers get minimized records only)" "recv PUBACK" \
	dev-a connect:dev-a::clean expect:CONNACK subscribe:hearth/v1/dev-a/telemetry:1 expect:SUBACK:000101 \
	publish:hearth/v1/dev-a/telemetry:"$payload":1 expect:PUBACK:0002 sleep:1 pingreq expect:PINGRESP
t "a retained status publish is accepted" mosq_pub dev-a -i dev-a -t hearth/v1/dev-a/status -m online -r -q 1
t_eq "the retained status is delivered when the device subscribes" "hearth/v1/dev-a/status online" \
	"$(mosq_sub dev-a -i dev-a -t 'hearth/v1/dev-a/#' -C 1 -W 5 -v 2>&1)"
t_out "it is delivered with the retain flag" "r1" mosq_sub dev-a -i dev-a -t 'hearth/v1/dev-a/status' -C 1 -W 5 -d
t_raw "an empty client id takes the certificate's CN" "recv PUBACK" \
	dev-a connect: expect:CONNACK:0000 publish:hearth%2Fv1%2Fdev-a%2Ftelemetry:x:1 expect:PUBACK:0001

# Messages reach a subscriber of the same device (another connection takes over the identity, so a
# device's own subscriber and publisher cannot both be connected: the publish goes first, retained).
mosq_pub dev-b -i dev-b -t hearth/v1/dev-b/ack -m '{"v":1}' -r -q 1
t_eq "a QoS 1 subscription receives at QoS 1" "hearth/v1/dev-b/ack {\"v\":1}" \
	"$(mosq_sub dev-b -i dev-b -q 1 -t 'hearth/v1/dev-b/ack' -C 1 -W 5 -v 2>&1)"
mosq_pub dev-b -i dev-b -t hearth/v1/dev-b/ack -n -r -q 1
t_eq "an empty retained publish clears the retained message" "" \
	"$(mosq_sub dev-b -i dev-b -t 'hearth/v1/dev-b/ack' -C 1 -W 2 -v 2>/dev/null)"

# The ACL: a device touches only its own subtree.
t_fails "publishing to another device's topic closes the connection" \
	mosq_pub dev-a -i dev-a -t hearth/v1/dev-b/status -m spoof -q 1
t "the log says why" grep -q "dev-a .*PUBLISH to a topic outside the device's own" "$HLOG"
t_eq "the spoofed message was not delivered or retained" "" \
	"$(mosq_sub dev-b -i dev-b -t 'hearth/v1/dev-b/status' -C 1 -W 2 -v 2>/dev/null)"
t_out "subscribing to another device's subtree gets SUBACK 0x80" "Subscribed \(mid: 1\): 128" \
	mosq_sub dev-a -i dev-a -t 'hearth/v1/dev-b/#' -C 1 -W 2 -d
t_out "subscribing with a wildcard for the device id is refused" "Subscribed \(mid: 1\): 128" \
	mosq_sub dev-a -i dev-a -t 'hearth/v1/+/status' -C 1 -W 2 -d
t_out "subscribing to # is refused" "Subscribed \(mid: 1\): 128" mosq_sub dev-a -i dev-a -t '#' -C 1 -W 2 -d
t_fails "publishing outside hearth/v1/<id>/{telemetry,ack,status} is refused" \
	mosq_pub dev-a -i dev-a -t hearth/v1/dev-a/manifest/pins -m x -q 1
t_out "a client id other than the CN gets CONNACK 2" "identifier rejected" \
	mosq_pub dev-a -i dev-b -t hearth/v1/dev-a/telemetry -m x -q 1

# A second connection with the same identity takes over and closes the first.
start_bg mosq_sub dev-a -i dev-a -t 'hearth/v1/dev-a/#' -W 15
first=$BG_PID
t "the first connection is up" wait_for 5 grep -q "dev-a" "$HLOG"
sleep 0.5
mosq_pub dev-a -i dev-a -t hearth/v1/dev-a/telemetry -m x -q 1
t "the first connection is closed when another takes over" wait_for 5 grep -q "taken over by a new connection" "$HLOG"
kill "$first" 2>/dev/null

# Revocation while the server runs: the live connection goes within 2 seconds.
start_bg mosq_sub dev-b -i dev-b -t 'hearth/v1/dev-b/#' -W 20
sub=$BG_PID
wait_for 5 sh -c "grep -c 'dev-b' '$HLOG' >/dev/null" ; sleep 0.5
before=$(date +%s%N)
"$HEARTH" device revoke --data "$D" --id dev-b >/dev/null 2>&1
t "the revoked device's live connection is closed" wait_for 5 grep -q "dev-b .*closed: device revoked" "$HLOG"
after=$(date +%s%N)
t "... within 2 seconds ($(( (after - before) / 1000000 )) ms)" test $(( (after - before) / 1000000 )) -le 2000
t_fails "the revoked device's next connection is refused" mosq_pub dev-b -i dev-b -t hearth/v1/dev-b/telemetry -m x
t "refused in the handshake, as revoked" grep -q "device 'dev-b' refused: device or certificate revoked" "$HLOG"

t "the server is still running" kill -0 "$HPID"
stop_hearth
t "it stopped cleanly on SIGTERM" grep -q "shutting down" "$HLOG"
t_fails "its log has no sanitizer report" grep -Eq 'Sanitizer|runtime error:' "$HLOG"
