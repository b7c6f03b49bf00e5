# The store fails under ingest: the data directory on a small tmpfs that fills up, then SQLite I/O
# errors injected with libfiu. QoS 1 telemetry from real TLS clients gets no PUBACK for what was not
# stored: the message in the failed commit costs its connection (mqtt_raw sees it closed), after
# that publishers are no longer read (a mosquitto_pub that stays connected waits with its messages
# unacknowledged) instead of being buffered or dropped; the other devices are served, the outage is
# logged once, and everything held is stored and acknowledged once writes work again, without the
# publisher reconnecting. About 20 s.
#
# The publisher never has to reconnect here on purpose: libmosquitto (2.0.11) stops reconnecting
# for good when it sees the connection end as a TLS error (errno EPROTO in mosquitto_loop_forever),
# which a close racing with its pipelined PUBLISHes sometimes is.
. "$(dirname "$0")/lib.sh"
M=$T/mnt
D=$M/data
O=$T/out
mkdir -p "$M"

if ! mount -t tmpfs -o size=6m,mode=0700 tmpfs "$M" 2>"$T/mount.err"; then
	ok "SKIP: cannot mount a tmpfs here ($(head -1 "$T/mount.err")); the disk-full test needs mount permission"
	exit 0
fi
# Processes first (hearth holds files on the tmpfs), then the mount, then lib.sh's cleanup.
unmount_then_cleanup() {
	exec 7>&- 2>/dev/null
	for p in $BG_PIDS; do kill "$p" 2>/dev/null; done
	for p in $BG_PIDS; do wait "$p" 2>/dev/null; done
	umount "$M" 2>/dev/null || umount -l "$M"
	cleanup
}
trap unmount_then_cleanup EXIT

"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init on the tmpfs"; exit 1; }
"$HEARTH" model set --data "$D" --model heater --policy schema/policies/smart-heater.json >/dev/null 2>&1 || nok "model set"
for id in d1 d2 p0 q1 q2; do
	"$HEARTH" device add --data "$D" --id $id --model heater --genkey --out "$O" >/dev/null 2>&1 || nok "add $id"
done

# stored ID: telemetry messages counted in the store for device ID (n of its hourly mean).
stored() {
	sqlite3 "$D/hearth.db" "SELECT COALESCE(SUM(n), 0) FROM telemetry WHERE device_id = '$1' AND field = 'temperature'"
}
# A publisher that stays connected: mosquitto_pub -l sends one QoS 1 message per line written to
# fd 7, and with -d logs every PUBACK it receives (line-buffered into $PUBLOG).
start_publisher() {
	PUBLOG=$T/pub.$1.log
	rm -f "$T/fifo"; mkfifo "$T/fifo"
	# The FIFO is opened inside the background job: opening it here would wait for a writer.
	( exec stdbuf -oL timeout 120 mosquitto_pub -d -h 127.0.0.1 -p "$PORT" --cafile "$O/ca.pem" \
		--cert "$O/d1.crt" --key "$O/d1.key" -i d1 -t hearth/v1/d1/telemetry -q 1 -l \
		<"$T/fifo" >"$PUBLOG" 2>&1 ) &
	PUBPID=$!
	BG_PIDS="$BG_PIDS $PUBPID"
	exec 7>"$T/fifo"
}
stop_publisher() {
	exec 7>&-
	local i=0
	while kill -0 "$PUBPID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
}
send() { local i=0; while [ $i -lt "$1" ]; do echo "{\"temperature\": $2}" >&7; i=$((i + 1)); done; }
acks() { grep -c 'received PUBACK' "$PUBLOG"; }
connects() { grep -c 'sending CONNECT' "$PUBLOG"; }
acks_are() { [ "$(acks)" -eq "$1" ]; }
# acks_within N SECONDS: wait for the Nth PUBACK; if it does not come, show what both sides said.
acks_within() {
	wait_for "$2" acks_are "$1" && return 0
	echo "PUBACKs: $(acks) of $1"; tail -6 "$HLOG"; tail -4 "$PUBLOG"
	return 1
}
# fill: take every free byte of the tmpfs (big blocks, then the rest page by page).
fill() {
	dd if=/dev/zero of="$M/fill.1" bs=64k >/dev/null 2>&1
	dd if=/dev/zero of="$M/fill.2" bs=4k >/dev/null 2>&1
	dd if=/dev/zero of="$M/fill.3" bs=512 >/dev/null 2>&1
	[ "$(df --output=avail "$M" | tail -1 | tr -d ' ')" -eq 0 ]
}

start_hearth "$D" || { nok "hearth serve starts on the tmpfs"; exit 1; }
start_publisher 1
send 5 20
t "five messages are acknowledged while there is space" acks_within 5 10
t_eq "... and stored" 5 "$(stored d1)"

# --- the disk fills up -----------------------------------------------------------------------
t "the tmpfs is full" fill
# probe ID: one QoS 1 message from device ID, which the server must refuse by closing the
# connection without a PUBACK (its commit failed; the device sends it again when it reconnects).
probe() {
	raw "$1" connect:"$1" expect:CONNACK "publish:hearth/v1/$1/telemetry:{\"temperature\"%3A 25}:1" \
		expect_close:any >"$T/probe.out" 2>&1 && grep -q '^closed' "$T/probe.out" &&
		! grep -q '^recv PUBACK' "$T/probe.out"
}
t "the message whose commit fails gets no PUBACK; its connection is closed" probe p0
t "the server sees that it cannot store messages" wait_for 10 grep -q 'the store cannot take messages' "$HLOG"
send 5 30
# An absence is checked over a window: a PUBACK that came would come within it.
sleep 2
t_eq "no PUBACK for the publisher's messages, which are not stored" 5 "$(acks)"
t_eq "nothing more was stored" 5 "$(stored d1)"
t_eq "... and its connection is held, not closed: back-pressure" 1 "$(connects)"
t "the server keeps running" kill -0 "$HPID"
RAW_TIMEOUT=3 raw d2 connect:d2 expect:CONNACK 'publish:hearth/v1/d2/telemetry:{"temperature"%3A 25}:1' \
	expect:PUBACK >"$T/d2.out" 2>&1
rc=$?
t_eq "another device's QoS 1 message gets no PUBACK either (mqtt_raw's expect times out)" 1 "$rc"
t_fails "... and its connection is held too" grep -Eq '^(closed|recv PUBACK)' "$T/d2.out"
t_raw "a device that does not publish still connects, subscribes and gets PINGRESP" 'recv PINGRESP' q1 \
	connect:q1 expect:CONNACK 'subscribe:hearth/v1/q1/manifest/#:1' expect:SUBACK pingreq expect:PINGRESP disconnect
t_raw "a QoS 0 message is dropped without holding its connection (PINGRESP after it)" 'recv PINGRESP' q2 \
	connect:q2 expect:CONNACK 'publish:hearth/v1/q2/telemetry:{"temperature"%3A 5}:0' pingreq expect:PINGRESP disconnect
t_eq "the outage is logged once" 1 "$(grep -c 'the store cannot take messages' "$HLOG")"
t "SQLite's error is logged, once per store handle at most (not per message or per try)" \
	test "$(grep -c 'database or disk is full' "$HLOG")" -ge 1 -a "$(grep -c 'database or disk is full' "$HLOG")" -le 3

# --- space returns -----------------------------------------------------------------------------
rm -f "$M"/fill.*
t "once space returns every message is acknowledged (5 + 5)" acks_within 10 15
t_eq "... on the connection that waited (no reconnect)" 1 "$(connects)"
t "the server says so, once" test "$(grep -c 'messages are stored again after' "$HLOG")" -eq 1
t "no acknowledged message is missing (stored $(stored d1) >= acked 10)" test "$(stored d1)" -ge 10
t "... and none is stored twice" test "$(stored d1)" -le 10
send 3 22
t "later messages are acknowledged at once" acks_within 13 5
t_eq "... and stored" 13 "$(stored d1)"
t_eq "the held QoS 1 message of the other device was stored when its connection was read again" 1 "$(stored d2)"
t_eq "the QoS 0 message sent during the outage was not" 0 "$(stored q2)"
t_eq "nor the refused one of the probe (its device would send it again)" 0 "$(stored p0)"
t_eq "only the connection whose message was in the failed commit was closed for it" 1 \
	"$(grep -c 'closed: messages could not be stored' "$HLOG")"
stop_publisher
stop_hearth
t_eq "the database is sound" ok "$(sqlite3 "$D/hearth.db" 'PRAGMA integrity_check')"

# --- I/O errors: libfiu makes SQLite's writes and syncs fail with EIO ---------------------------
if ! command -v fiu-run >/dev/null 2>&1 || ! command -v fiu-ctrl >/dev/null 2>&1; then
	ok "SKIP: fiu-run/fiu-ctrl are not installed (Debian fiu-utils; scripts/install-deps.sh installs it): no I/O error injection"
	exit 0
fi
if ldd "$HEARTH" 2>/dev/null | grep -Eq 'lib(asan|tsan|msan)'; then
	ok "SKIP: hearth is built with a sanitizer; libfiu's preload (which wraps malloc too) crashes in front of its runtime"
	exit 0
fi
real=$HEARTH
printf '#!/bin/sh\nexec fiu-run -x -f "%s" "%s" "$@"\n' "$T/fiu" "$real" >"$T/hearth-fiu"
chmod +x "$T/hearth-fiu"
HEARTH=$T/hearth-fiu start_hearth "$D" || { nok "hearth serve starts under fiu-run"; exit 1; }
HEARTH=$real
before=$(stored d1)
start_publisher 2
send 3 20
t "under fiu-run, messages are acknowledged while no fault is on" acks_within 3 10
fiu() { fiu-ctrl -f "$T/fiu" "$@" "$HPID"; }
t "SQLite's pwrite, fsync and fdatasync fail with EIO from now on" \
	fiu -c 'enable name=posix/io/rw/pwrite,failinfo=5' -c 'enable name=posix/io/sync/*,failinfo=5'
t "the message whose commit fails gets no PUBACK; its connection is closed" probe p0
t "the server sees that it cannot store messages" wait_for 10 grep -q 'the store cannot take messages' "$HLOG"
send 4 30
sleep 2
t_eq "no PUBACK for the publisher's messages, which are not stored" 3 "$(acks)"
t_eq "nothing more was stored" $((before + 3)) "$(stored d1)"
t "SQLite's I/O error is logged" grep -q 'disk I/O error' "$HLOG"
t "the faults are switched off" fiu -c 'disable name=posix/io/rw/pwrite' -c 'disable name=posix/io/sync/*'
t "then every message is acknowledged (3 + 4)" acks_within 7 15
t_eq "... on the connection that waited (no reconnect)" 1 "$(connects)"
t "no acknowledged message is missing" test "$(stored d1)" -ge $((before + 7))
t "the server says it stores again" grep -q 'messages are stored again after' "$HLOG"
stop_publisher
stop_hearth
t_eq "the database is sound after the I/O errors" ok "$(sqlite3 "$D/hearth.db" 'PRAGMA integrity_check')"
