# kill -9 under QoS 1 load: a device (libmosquitto, $MOSQ_CLIENT stream mode) publishes telemetry
# over TLS while `hearth serve` is killed at a random moment, KILL9_ROUNDS times (`make kill9`: 200);
# after every kill the database must pass `PRAGMA integrity_check` and hold every message that got
# a PUBACK. The store keeps only minimized aggregates, so the check is built on the policy: message
# j sets field k<j/50> to 2^(j%50) and the policy keeps each field's per-minute "mean", whose stored
# sum is then a bitmap of exactly the messages that reached the disk (and its count n says none
# was stored twice). Each round uses a device of its own, so its sums start at zero.
#   KILL9_ROUNDS (default 10)   KILL9_SEED (default: the shell's PID; printed, to replay a run)
. "$(dirname "$0")/lib.sh"
[ -x "${MOSQ_CLIENT:-}" ] || { nok "MOSQ_CLIENT names the built tests/integration/mosq_client.c"; exit 1; }
ROUNDS=${KILL9_ROUNDS:-10}
case $ROUNDS in '' | *[!0-9]*) nok "KILL9_ROUNDS is a number of rounds"; exit 1 ;; esac
[ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 1000 ] || { nok "KILL9_ROUNDS is 1..1000"; exit 1; }
SEED=${KILL9_SEED:-$$}
RANDOM=$SEED
echo "  kill -9 in $ROUNDS rounds (KILL9_SEED=$SEED)"
D=$T/data
O=$T/out
BITS=50

"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
{
	printf '{"policy": 1, "last_seen_bucket_s": 3600, "fields": {'
	for f in $(seq 0 63); do
		[ "$f" -gt 0 ] && printf ', '
		printf '"k%d": {"type": "number", "aggregate": "mean", "bucket_s": 60, "retention_days": 1}' "$f"
	done
	printf '}}\n'
} > "$T/bitmap-policy.json"
t "a policy of 64 bitmap fields is accepted" "$HEARTH" model set --data "$D" --model bitmap --policy "$T/bitmap-policy.json"
made=0
for r in $(seq 1 "$ROUNDS"); do
	"$HEARTH" device add --data "$D" --id "r$r" --model bitmap --genkey --out "$O" >/dev/null 2>&1 || break
	made=$r
done
t_eq "a device for each round" "$ROUNDS" "$made"

# The bitmaps stored for one device (stdin: "field sum n" rows) against the messages its client
# published (the first $2) and the ones it saw acknowledged (file $1, an index a line).
check_round() {
	python3 -c '
import sys
bits = int(sys.argv[3])
acked = {int(x) for x in open(sys.argv[1]).read().split()}
published = int(sys.argv[2])
stored, bad = set(), []
for line in sys.stdin.read().splitlines():
    field, total, n = line.split()
    f, total, n = int(field[1:]), int(total), int(n)
    mask = [b for b in range(bits) if total >> b & 1]
    if total < 0 or total >> bits or len(mask) != n:
        bad.append("%s holds %d from %d values: not %d distinct messages" % (field, total, n, n))
    stored |= {f * bits + b for b in mask}
lost = sorted(acked - stored)
unsent = sorted(i for i in stored if i >= published)
if lost:
    bad.append("acknowledged but not stored: %s" % lost[:20])
if unsent:
    bad.append("stored but never published: %s" % unsent[:20])
print("published %d, acked %d, stored %d (%d of them not acknowledged)%s" % (published, len(acked),
      len(stored), len(stored - acked), "; " + "; ".join(bad) if bad else ""))
sys.exit(1 if bad else 0)
' "$1" "$2" "$BITS"
}

bad_integrity="" bad_lost="" bad_load="" no_restart=0 under_load=0 acked_total=0 unacked_stored=0
for r in $(seq 1 "$ROUNDS"); do
	start_hearth "$D" || { no_restart=$((no_restart + 1)); break; }
	"$MOSQ_CLIENT" --port "$PORT" --cafile "$O/ca.pem" --cert "$O/r$r.crt" --key "$O/r$r.key" --id "r$r" \
		--timeout 30 stream --count 3200 --rate 400 --window 20 --acked "$T/acked.$r" > "$T/client.$r" 2>&1 &
	cpid=$!
	BG_PIDS="$BG_PIDS $cpid"
	# Most kills land while PUBACKs flow (0..1 s after the first one); every fourth round at any
	# moment from the start of the server on: its handshakes, CONNECT, the first commits.
	if [ $((RANDOM % 4)) -eq 0 ]; then
		kind=anytime
		sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.3f", (r % 800) / 1000 }')"
	else
		kind=loaded
		wait_for 15 test -s "$T/acked.$r" || bad_load="$bad_load $r"
		sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.3f", (r % 1000) / 1000 }')"
	fi
	kill -9 "$HPID"
	wait "$HPID" 2>/dev/null
	wait "$cpid"
	crc=$?
	[ "$kind" = loaded ] && { under_load=$((under_load + 1)); [ "$crc" -eq 3 ] || bad_load="$bad_load $r"; }
	integrity=$(sqlite3 "$D/hearth.db" 'PRAGMA integrity_check' 2>&1)
	[ "$integrity" = ok ] || bad_integrity="$bad_integrity $r"
	published=$(sed -n 's/^published \([0-9]*\) .*/\1/p' "$T/client.$r")
	sqlite3 -separator ' ' "$D/hearth.db" "SELECT field, CAST(SUM(value) AS INTEGER), SUM(n) FROM telemetry
		WHERE device_id = 'r$r' GROUP BY field" > "$T/stored.$r" 2>&1
	touch "$T/acked.$r"
	if verdict=$(check_round "$T/acked.$r" "${published:-0}" < "$T/stored.$r" 2>&1); then :; else
		bad_lost="$bad_lost $r"
	fi
	echo "  round $r ($kind, client exit $crc): $verdict; integrity $integrity"
	acked_total=$((acked_total + $(wc -l < "$T/acked.$r")))
	case $verdict in *"stored "*"("[1-9]*) unacked_stored=$((unacked_stored + 1)) ;; esac
done

t_eq "hearth restarted after every kill" 0 "$no_restart"
t_eq "PRAGMA integrity_check said ok after every kill (rounds failing:$bad_integrity)" "" "$bad_integrity"
t_eq "no acknowledged message was lost, none stored twice (rounds failing:$bad_lost)" "" "$bad_lost"
t_eq "each loaded kill came while PUBACKs flowed, before the client was done (rounds failing:$bad_load)" "" "$bad_load"
t "PUBACKs were received before the kills ($acked_total in all)" test "$acked_total" -gt 0
echo "  $under_load rounds killed under load; in $unacked_stored a message was stored whose PUBACK the kill stopped"

# After the last kill: it starts, and answers.
start_hearth "$D" || nok "hearth starts after the last kill"
t_out "the REST API answers after the last kill" "^ok$" curl -sS --max-time 10 --cacert "$D/certs/ca.pem" \
	"https://127.0.0.1:$API_PORT/healthz"
stop_hearth
t_eq "the database is sound at the end" ok "$(sqlite3 "$D/hearth.db" 'PRAGMA integrity_check' 2>&1)"
[ "$fail" -eq 0 ]
