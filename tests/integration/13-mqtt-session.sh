# Persistent sessions, wills, and the endpoint certificate's renewal without dropped connections.
. "$(dirname "$0")/lib.sh"
D=$T/data
O=$T/out
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
for id in d1 d2; do
	"$HEARTH" device add --data "$D" --id $id --model m --genkey --out "$O" >/dev/null 2>&1 || nok "add $id"
done
start_hearth "$D" || { nok "hearth serve starts"; exit 1; }
TOPIC=$(hex hearth/v1/d1/status)

# A persistent session keeps its subscription; a QoS 1 will published while it is offline is
# queued for it and delivered when it comes back.
t_raw "a persistent session subscribes at QoS 1" "body=000101" \
	d1 connect:d1:60 expect:CONNACK subscribe:hearth/v1/d1/status:1 expect:SUBACK:000101 disconnect
t_raw "reconnecting finds the session present" "recv CONNACK flags=0 body=0100" \
	d1 connect:d1:60 expect:CONNACK:0100 disconnect
# CONNECT with clean session 0 and a QoS 1 will "gone" on its own status topic, then a dropped link.
t "a connection with a will drops without DISCONNECT" \
	raw d1 send:1029"00044d51545404"0c003c00026431"0013${TOPIC}0004$(hex gone)" expect:CONNACK:0100
t_raw "the will was queued and arrives on reconnect, at QoS 1" "recv PUBLISH flags=2 body=0013${TOPIC}[0-9a-f]{4}$(hex gone)" \
	d1 connect:d1:60 expect:CONNACK:0100 expect:PUBLISH
t_raw "unacknowledged, it is sent again with DUP" "recv PUBLISH flags=a body=0013${TOPIC}[0-9a-f]{4}$(hex gone)" \
	d1 connect:d1:60 expect:CONNACK:0100 expect:PUBLISH puback:1
t_fails "once acknowledged it is gone" raw d1 connect:d1:60 expect:CONNACK:0100 expect:PUBLISH
t_raw "a clean session discards it all" "recv CONNACK flags=0 body=0000" d1 connect:d1:60:clean expect:CONNACK:0000
t_raw "a will to another device's topic is refused with CONNACK 5" "body=0005" \
	d1 send:1029"00044d51545404"0c003c00026431"0013$(hex hearth/v1/d2/status)0004$(hex gone)" expect:CONNACK:0005

# Renewal: `hearth ca renew-endpoint` replaces the certificate; the running server serves the new
# one to new handshakes while a live connection carries on.
serial() { timeout 10 openssl s_client -connect 127.0.0.1:"$PORT" -CAfile "$O/ca.pem" -cert "$O/d2.crt" \
	-key "$O/d2.key" </dev/null 2>/dev/null | openssl x509 -noout -serial; }
old=$(serial)
RAW_TIMEOUT=20 raw d2 connect:d2:60:clean expect:CONNACK sleep:7 pingreq expect:PINGRESP \
	publish:hearth/v1/d2/telemetry:after:1 expect:PUBACK:0001 > "$T/live.out" 2>&1 &
LIVE=$!
sleep 1
t "ca renew-endpoint issues a new certificate" "$HEARTH" ca renew-endpoint --data "$D"
kill -HUP "$HPID"
t "the server reloads it" wait_for 5 grep -q "endpoint certificate reloaded" "$HLOG"
new=$(serial)
t "new handshakes get the new certificate ($old -> $new)" test -n "$new" -a "$new" != "$old"
t "the new certificate verifies against the CA" sh -c "openssl verify -CAfile '$O/ca.pem' '$D/certs/endpoint.crt'"
t_out "it keeps the names" "DNS:localhost, IP Address:127.0.0.1" openssl x509 -in "$D/certs/endpoint.crt" -noout -ext subjectAltName
t_eq "it keeps the key (the pin does not change)" \
	"$(openssl x509 -in "$D/certs/endpoint.crt" -noout -pubkey)" "$(openssl pkey -in "$D/keys/endpoint.key" -pubout)"
wait "$LIVE"
t "the connection made before the renewal carried on" test $? -eq 0
t_eq "renewals are audited" 1 "$(sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM audit_log WHERE action = 'endpoint.renew'")"
stop_hearth

# The server renews by itself at 2/3 of the certificate's life (here: 21 of 30 days later).
if command -v faketime >/dev/null 2>&1; then
	before=$(openssl x509 -in "$D/certs/endpoint.crt" -noout -serial)
	# (an ASan build must be told that libfaketime is preloaded before its runtime)
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 FAKETIME="+21d" LD_PRELOAD=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1) start_hearth "$D"
	t "at 2/3 of its life the endpoint certificate is renewed" wait_for 10 grep -q "endpoint certificate renewed" "$HLOG"
	t "the file holds a new certificate" test "$(openssl x509 -in "$D/certs/endpoint.crt" -noout -serial)" != "$before"
	stop_hearth
else
	nok "faketime is not installed (scripts/install-deps.sh installs it)"
fi
t_fails "no sanitizer report" grep -Eq 'Sanitizer|runtime error:' "$T"/serve.*.log
