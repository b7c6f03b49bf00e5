# The presence-inference check (issue 4): simulated households publish through the real endpoint,
# and a classifier tries to tell from what hearth stored whether someone is home. Sourced by
# tests/integration/16-privacy.sh (so `make test` runs it) and run by `make privacy`.
#   PRIVACY_HOUSEHOLDS (10), PRIVACY_DAYS (7), PRIVACY_SEED (1): the simulation
#   PRIVACY_KEEP=DIR: keep the data directory, ground truth and result.json there
#   PRIVACY_POLICY_PLAIN, PRIVACY_POLICY_PRESENCE: try other policy files than the shipped ones
# Needs python3-numpy, python3-sklearn, python3-paho-mqtt and faketime (scripts/install-deps.sh).
. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
P=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3            # Debian's, where the python3-* packages are
POL_PLAIN=${PRIVACY_POLICY_PLAIN:-schema/policies/smart-heater.json}
POL_PRESENCE=${PRIVACY_POLICY_PRESENCE:-schema/policies/smart-heater-presence.json}
HOUSEHOLDS=${PRIVACY_HOUSEHOLDS:-10} DAYS=${PRIVACY_DAYS:-7} SEED=${PRIVACY_SEED:-1}
FAKELIB=$(faketime_lib)
t "libfaketime is installed" test -n "$FAKELIB"
t "numpy, sklearn and paho-mqtt are installed" "$PY" -c "import numpy, sklearn, paho.mqtt.client"
[ "$fail" -eq 0 ] || exit 1

D=$T/data O=$T/out W=${PRIVACY_KEEP:-$T/work}
mkdir -p "$W"
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
t "policy for the plain heater ($POL_PLAIN)" "$HEARTH" model set --data "$D" --model heater --policy "$POL_PLAIN"
t "policy for the presence-mode heater ($POL_PRESENCE)" "$HEARTH" model set --data "$D" --model heater-presence \
	--policy "$POL_PRESENCE"
# Device certificates are issued at the real time; the fake clock below starts after it.
h=0
while [ $h -lt "$HOUSEHOLDS" ]; do
	id=$(printf 'hh%02d' $h)
	"$HEARTH" device add --data "$D" --id "$id-plain" --model heater --genkey --out "$O" >/dev/null 2>&1 &&
	"$HEARTH" device add --data "$D" --id "$id-presence" --model heater-presence --genkey --out "$O" >/dev/null 2>&1 ||
		{ nok "device add $id"; exit 1; }
	h=$((h + 1))
done

# The server's clock is stopped and moved by the publisher (presence_check.py), one tick at a time;
# a tick is the gcd of every bucket size in both policies, so bucketing is exact.
TICK=$("$PY" -c '
import json, math, sys
g = 0
for p in sys.argv[1:]:
    d = json.load(open(p))
    g = math.gcd(g, d.get("last_seen_bucket_s", 3600))
    for f in d["fields"].values():
        g = math.gcd(g, f.get("bucket_s", g or 3600))
print(g)' "$POL_PLAIN" "$POL_PRESENCE")
t "the tick ($TICK s) is a multiple of the 30-s sample interval" test $((TICK % 30)) -eq 0
START=$(( ($(date +%s) / 86400 + 1) * 86400 ))       # the next midnight (UTC), after the certs' issue
CLOCK=$T/clock
date -u -d "@$START" '+%Y-%m-%d %H:%M:%S' > "$CLOCK"
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 LD_PRELOAD=$FAKELIB FAKETIME_TIMESTAMP_FILE=$CLOCK FAKETIME_NO_CACHE=1 FAKETIME_DONT_FAKE_MONOTONIC=1 \
	start_hearth "$D" || { nok "hearth serve starts under libfaketime"; exit 1; }
t_out "the server runs on the fake clock" "^$(date -u -d "@$START" '+%Y-%m-%dT%H')" head -1 "$HLOG"

t0=$(date +%s)
t "simulated households publish through the endpoint (every sample acknowledged)" \
	timeout 900 "$PY" "$P/presence_check.py" publish --port "$PORT" --certs "$O" --clock-file "$CLOCK" \
	--start "$START" --tick "$TICK" --households "$HOUSEHOLDS" --days "$DAYS" --seed "$SEED" --work "$W"
cat "$T/.out"
t1=$(date +%s)
stop_hearth
t_eq "the database is sound" ok "$(sqlite3 "$D/hearth.db" 'PRAGMA integrity_check')"
t_fails "no sanitizer report" grep -Eq 'Sanitizer|runtime error:' "$HLOG"
[ -n "${PRIVACY_KEEP:-}" ] && cp -a "$D" "$W/data"

t "the classifiers run" timeout 600 "$PY" "$P/presence_check.py" analyze --db "$D/hearth.db" --work "$W"
cat "$T/.out"
echo "  publish took $((t1 - t0)) s, analysis $(( $(date +%s) - t1 )) s"
R=$W/result.json
val() { "$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))$1)" "$R" 2>/dev/null; }
t_eq "every published sample is stored (no problems)" "[]" "$(val "['problems']")"
raw_gain=$(val "['primary_raw_gain']")
worst=$(val "['worst_stored_gain']")
t "the raw stream reveals presence: raw - clock = $raw_gain >= 0.10 (tree, leave-one-day-out)" \
	"$PY" -c "import sys; sys.exit(not float('$raw_gain') >= 0.10)"
t "what hearth stored adds at most 0.03 over the clock: worst stored - clock = $worst" \
	"$PY" -c "import sys; sys.exit(not float('$worst') <= 0.03)"
[ "$fail" -eq 0 ]
