# Hostile MQTT bytes over a real TLS connection: each gets a clean refusal (the connection closes,
# or a SUBACK 0x80), the server keeps running, and a real device still connects afterwards.
. "$(dirname "$0")/lib.sh"
D=$T/data
O=$T/out
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
"$HEARTH" device add --data "$D" --id d1 --model m --genkey --out "$O" >/dev/null 2>&1 || nok "add d1"
# The 1,000 half-open handshakes below all come from 127.0.0.1, like the device: the per-address
# limits are off here so that all of them hang until the timeout (34-load-held.sh tests the limits).
start_hearth "$D" --handshake-timeout 2000 --connect-timeout 2000 --max-connections-per-address 0 \
	--max-handshakes-per-address 0 || { nok "hearth serve starts"; exit 1; }

CONNECT=connect:d1
TOPIC=$(hex hearth/v1/d1/status)   # 19 bytes
closes() { # DESC STEP... : after the steps the server closes the connection
	local d=$1; shift
	t "$d" raw d1 "$@" expect_close
}
# Remaining length in 5 bytes (the 5th continuation byte is forbidden).
closes "remaining length in 5 bytes" send:30ffffffff7f
rss() { awk '/^VmRSS/ { print $2 }' /proc/"$HPID"/status; }
raw d1 $CONNECT expect:CONNACK disconnect >/dev/null 2>&1   # warm up: first-use allocations
rss0=$(rss)
closes "a first packet claiming 256 MB is closed before anything is allocated" send:10ffffff7f
closes "a PUBLISH claiming 200 MB after CONNECT" $CONNECT expect:CONNACK send:30ffffdf5f
rss1=$(rss)
# 456 MB were claimed; a few MB of growth (allocator caches, ASan's quarantine) is not that.
t "memory stays flat after the huge claims (${rss0} -> ${rss1} KiB)" test "$rss1" -le $((rss0 + 16384))
closes "a packet before CONNECT" send:c000
closes "a PUBLISH before CONNECT" send:300800046869212168656c6c6f
closes "a second CONNECT" $CONNECT expect:CONNACK $CONNECT
closes "wrong protocol name (MQIsdp)" send:101000064d51497364700302003c00026431
t_raw "wrong protocol level gets CONNACK 1, then the close" "recv CONNACK flags=0 body=0001" \
	d1 send:100f00044d5154540502003c0002643100 expect:CONNACK:0001 expect_close
closes "reserved bit in the CONNECT flags" send:100f00044d5154540403003c0002643100
closes "reserved flag bits on PINGREQ" $CONNECT expect:CONNACK send:c100
closes "reserved flag bits on SUBSCRIBE (not 0010)" $CONNECT expect:CONNACK send:800800010003612f6200
closes "QoS 3 PUBLISH" $CONNECT expect:CONNACK send:36180013${TOPIC}000178
closes "QoS 1 PUBLISH with packet id 0" $CONNECT expect:CONNACK send:32180013${TOPIC}000078
closes "zero-length topic" $CONNECT expect:CONNACK send:300300000078
closes "'+' in a PUBLISH topic" $CONNECT expect:CONNACK publish:hearth/v1/d1/+:x
closes "'#' in a PUBLISH topic" $CONNECT expect:CONNACK publish:hearth/v1/d1/%23:x
closes "U+0000 in a PUBLISH topic" $CONNECT expect:CONNACK publish:hearth/v1/d1/st%00atus:x
closes "invalid UTF-8 in a PUBLISH topic" $CONNECT expect:CONNACK publish:hearth/v1/d1/%C0%AFstatus:x
closes "a lone surrogate in a PUBLISH topic" $CONNECT expect:CONNACK publish:hearth/v1/d1/%ED%A0%80:x
deep=$(printf 'a/%.0s' $(seq 3000))a
closes "a topic with 3,000 levels" $CONNECT expect:CONNACK publish:"$deep":x
t_raw "filter a/#/b gets SUBACK 0x80" "recv SUBACK flags=0 body=000180" \
	d1 $CONNECT expect:CONNACK subscribe:hearth/v1/d1/%23/b expect:SUBACK:000180
t_raw "filter a+/b gets SUBACK 0x80" "recv SUBACK flags=0 body=000180" \
	d1 $CONNECT expect:CONNACK subscribe:hearth/v1/d1/a+/b expect:SUBACK:000180
t_raw "an empty filter gets SUBACK 0x80" "recv SUBACK flags=0 body=000180" \
	d1 $CONNECT expect:CONNACK send:82050001000000 expect:SUBACK:000180
t_raw "a deep filter gets SUBACK 0x80" "recv SUBACK flags=0 body=000180" \
	d1 $CONNECT expect:CONNACK subscribe:"hearth/v1/d1/$deep" expect:SUBACK:000180
closes "a client sending CONNACK" $CONNECT expect:CONNACK send:20020000
closes "a client sending SUBACK" $CONNECT expect:CONNACK send:9003000100
closes "a client sending PUBREC" $CONNECT expect:CONNACK send:50020001
closes "trailing bytes in PINGREQ" $CONNECT expect:CONNACK send:c0010000
closes "a packet larger than --max-packet" $CONNECT expect:CONNACK send:3080808001
closes "garbage instead of MQTT" send:deadbeefdeadbeef

# Silence: keepalive 1 s is enforced at 1.5 s; no CONNECT at all within --connect-timeout.
RAW_TIMEOUT=4 t "keepalive silence is closed after 1.5 x keepalive" raw d1 connect:d1:1 expect:CONNACK expect_close
RAW_TIMEOUT=5 t "no CONNECT after the handshake is closed at the connect timeout" raw d1 expect_close
t "PINGREQ keeps a keepalive-1 connection alive past 1.5 s" raw d1 connect:d1:1 expect:CONNACK \
	sleep:0.8 pingreq expect:PINGRESP sleep:0.8 pingreq expect:PINGRESP publish:hearth/v1/d1/status:up:1 expect:PUBACK:0001

# 1,000 half-open TLS handshakes while a real device still connects.
python3 "$(dirname "$0")/mqtt_raw.py" --host 127.0.0.1 --port "$PORT" --repeat-handshakes 1000 --hold 6 \
	--expect-server-close > "$T/halfopen.out" 2>&1 &
HALF=$!
sleep 1
t_out "a real device connects while 1,000 handshakes hang" "received PUBACK" \
	mosq_pub d1 -i d1 -t hearth/v1/d1/telemetry -m x -q 1 -d
wait "$HALF"; rc=$?
t "the 1,000 half-open handshakes were all closed by the handshake timeout" test "$rc" -eq 0
t_out "... all of them" "closed_by_server=1000 still_open=0" cat "$T/halfopen.out"

t "the server is still running after all of it" kill -0 "$HPID"
t_out "and a device still gets its PUBACK" "received PUBACK" mosq_pub d1 -i d1 -t hearth/v1/d1/telemetry -m x -q 1 -d
stop_hearth
t_fails "its log has no sanitizer report" grep -Eq 'Sanitizer|runtime error:' "$HLOG"
