# hearth gathers the records of a handshake flight and sends them at once (server/tls.c): a full
# handshake reaches the device as three TCP segments with data (ServerHello to ServerHelloDone;
# ticket, ChangeCipherSpec and Finished; CONNACK), a resumed one as two, instead of one segment
# per record (9 and 4). The kernel counts them (TCP_INFO on the device's socket); the loadgen
# reports the mean. Its reads take what the socket holds: MQTT data that arrives together with the
# client's last flight is served from there, not lost. Real peers still connect and publish.
. "$(dirname "$0")/lib.sh"
D=$T/data
O=$T/out
loadgen_fleet f 4 || exit 1
start_hearth "$D" || { nok "hearth serve starts"; exit 1; }

# segments FILE: the server_segments figure of the loadgen's result line.
segments() { sed -n 's/^result .* server_segments=\([0-9.]*\).*/\1/p' "$1"; }

"$LOADGEN" --port "$PORT" --certdir "$O" --ids "$T/ids" --handshakes 12 --concurrency 3 --timeout 60 \
	>"$T/full.out" 2>&1
t_out "twelve full handshakes" "^result mode=handshakes ok=12 failed=0 " cat "$T/full.out"
t "... each reaching the device in three segments with data, at most" \
	awk -v s="$(segments "$T/full.out")" 'BEGIN { exit !(s != "" && s + 0 > 0 && s + 0 <= 3) }'
"$LOADGEN" --port "$PORT" --certdir "$O" --ids "$T/ids" --resumed 12 --devices 4 --concurrency 2 --timeout 60 \
	>"$T/resumed.out" 2>&1
t_out "twelve resumed handshakes, all resumed" "^result mode=resumed ok=12 failed=0 .*reused_frac=1.0000" \
	cat "$T/resumed.out"
t "... each in two segments, at most" \
	awk -v s="$(segments "$T/resumed.out")" 'BEGIN { exit !(s != "" && s + 0 > 0 && s + 0 <= 2) }'

# Python's ssl (OpenSSL) resumes a session and sends its ChangeCipherSpec, Finished, CONNECT and a
# QoS 1 PUBLISH in one write.
t_out "MQTT data in the resumed handshake's last flight is answered" "^resumed=1 connack=0 puback=7$" \
	python3 "$(dirname "$0")/tls_with_data.py" --port "$PORT" --cafile "$O/ca.pem" --cert "$O/f3.crt" \
	--key "$O/f3.key" --id f3 --timeout 10
t_out "... and stored" "^1$" sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM telemetry WHERE device_id = 'f3'"

# Peers nobody here wrote: the OpenSSL command line and Mosquitto's client.
t_out "openssl s_client completes a handshake" "Verify return code: 0" sh -c 'echo | timeout 20 openssl s_client \
	-connect "127.0.0.1:$1" -CAfile "$2/ca.pem" -cert "$2/f1.crt" -key "$2/f1.key" -verify_return_error 2>&1' \
	sh "$PORT" "$O"
t "mosquitto_pub publishes at QoS 1" mosq_pub f2 -i f2 -q 1 -t hearth/v1/f2/telemetry -m '{"temperature":20.5}'
t_fails "hearth logged no warning or error" grep -qE "hearth (warn[a-z]*|error):" "$HLOG"
stop_hearth
