# hearth config check|show|example, and hearth serve under DIR/hearth.conf, HEARTH_* variables and
# flags: a bad setting is named by file and line (or variable) and stops the server before it starts.
. "$(dirname "$0")/lib.sh"
D=$T/data
"$HEARTH" init --data "$D" >/dev/null 2>&1 || nok "hearth init"

# No file: the defaults, and that is fine.
t_out "check without a file is OK" "^$D/hearth.conf: OK \(0 settings\)$" "$HEARTH" config check --data "$D"
t "check without a file exits 0" "$HEARTH" config check --data "$D"

printf '# limits\n\nmax_packet = 1048576\n  max_inflight=64  \nlog_level = debug\n' > "$D/hearth.conf"
t_out "check counts a good file's settings" "^$D/hearth.conf: OK \(3 settings\)$" "$HEARTH" config check --data "$D"

# A bad file: exit 1, the file, the line and the problem.
cp "$D/hearth.conf" "$T/good.conf"
printf 'max_inflight = 2\n# x\nmax_packet = 99999999999\n' > "$D/hearth.conf"
t_fails "check fails on an out-of-range value" "$HEARTH" config check --data "$D"
t_out "it names file, line and range" "^$D/hearth.conf:3: max_packet: 99999999999 is out of range \(16\.\.268435456\)$" \
	"$HEARTH" config check --data "$D"
printf 'max_packet = 1024\nmax_pakcet = 1\n' > "$D/hearth.conf"
t_out "an unknown key is named" "hearth.conf:2: unknown key 'max_pakcet'" "$HEARTH" config check --data "$D"
printf 'log_level = debug\n\nlog_level = info\n' > "$D/hearth.conf"
t_out "a duplicate key is named with its first line" "hearth.conf:3: log_level: already set on line 1" \
	"$HEARTH" config check --data "$D"
printf 'log_level = loud\n' > "$D/hearth.conf"
t_out "a bad enum value lists the choices" "hearth.conf:1: log_level: 'loud' is not one of error, warning, info, debug" \
	"$HEARTH" config check --data "$D"
{ printf 'max_packet = 16\n#'; head -c 5000 /dev/zero | tr '\0' x; printf '\n'; } > "$D/hearth.conf"
t_out "an overlong line is named" "hearth.conf:2: line longer than 4096 bytes" "$HEARTH" config check --data "$D"
head -c 70000 /dev/zero | tr '\0' '#' > "$D/hearth.conf"
t_out "an oversized file is refused" "hearth.conf: larger than 65536 bytes" "$HEARTH" config check --data "$D"
cp "$T/good.conf" "$D/hearth.conf"

# The environment is checked too, and named by variable.
t_fails "check fails on a bad HEARTH_* value" env HEARTH_MAX_CONNECTIONS=lots "$HEARTH" config check --data "$D"
t_out "it names the variable" "^HEARTH_MAX_CONNECTIONS: 'lots' is not a number$" \
	env HEARTH_MAX_CONNECTIONS=lots "$HEARTH" config check --data "$D"
t_out "good variables are counted" "^environment: OK \(2 settings\)$" \
	env HEARTH_MAX_QUEUED=5 HEARTH_HANDSHAKE_THREADS=auto "$HEARTH" config check --data "$D"
t_out "an unknown HEARTH_* variable is warned about" "warning: HEARTH_MAX_PAKCET names no setting" \
	env HEARTH_MAX_PAKCET=1 "$HEARTH" config check --data "$D"
env HEARTH_DATA="$D" "$HEARTH" config check > "$T/data.out" 2>&1
t_out "HEARTH_DATA names the data directory" "^$D/hearth.conf: OK" cat "$T/data.out"
t_fails "HEARTH_DATA draws no warning" grep -q warning "$T/data.out"

# show: every value and where it came from; a flag beats the environment, which beats the file.
HEARTH_MAX_INFLIGHT=65 HEARTH_MAX_QUEUED=7 "$HEARTH" config show --data "$D" --max-queued 8 \
	--handshake-timeout=2000 > "$T/show" 2>&1
t_eq "show: a default" "mqtt 127.0.0.1:8883 default" "$(awk '$1 == "mqtt" { print $1, $2, $3 }' "$T/show")"
t_eq "show: from the file, with its line" "max_packet 1048576 file hearth.conf, line 3" \
	"$(awk '$1 == "max_packet" { $1 = $1; print }' "$T/show")"
t_eq "show: the environment beats the file" "max_inflight 65 env HEARTH_MAX_INFLIGHT" \
	"$(awk '$1 == "max_inflight" { $1 = $1; print }' "$T/show")"
t_eq "show: a flag beats the environment" "max_queued 8 flag --max-queued" \
	"$(awk '$1 == "max_queued" { $1 = $1; print }' "$T/show")"
t_eq "show: an old flag name sets its key" "handshake_timeout_ms 2000 flag --handshake-timeout-ms" \
	"$(awk '$1 == "handshake_timeout_ms" { $1 = $1; print }' "$T/show")"
t_eq "show lists every setting" 29 "$(grep -cE '^[a-z_]+ ' "$T/show")"
t_out "show refuses a bad flag by name" "--max-queued: 'many' is not a number" \
	"$HEARTH" config show --data "$D" --max-queued many

# example: a complete file that check accepts as it is, and with every setting uncommented.
mkdir -m 700 "$T/ex"
"$HEARTH" config example > "$T/ex/hearth.conf"
t_out "the example is a valid hearth.conf" "^$T/ex/hearth.conf: OK \(0 settings\)$" "$HEARTH" config check --data "$T/ex"
sed -i 's/^#\([a-z_]* = \)/\1/' "$T/ex/hearth.conf"
t_out "the example, uncommented, sets all 29 settings" "^$T/ex/hearth.conf: OK \(29 settings\)$" \
	"$HEARTH" config check --data "$T/ex"
"$HEARTH" config show --data "$T/ex" > "$T/show-ex"
"$HEARTH" config show --data "$T/nothing-here" > "$T/show-none"
t_eq "the uncommented example is the defaults" "$(awk 'NR > 2 { print $1, $2 }' "$T/show-none")" \
	"$(awk 'NR > 2 { print $1, $2 }' "$T/show-ex")"
t_eq "each of them from the file" 29 "$(grep -c ' file hearth.conf, line ' "$T/show-ex")"
"$HEARTH" serve --help > "$T/help"
missing=""
for f in $("$HEARTH" config example | sed -n 's/^#\([a-z_]*\) = .*/\1/p' | tr _ -); do
	grep -q -- "^  --$f " "$T/help" || missing="$missing --$f"
done
t_eq "serve --help lists every setting's flag" "" "$missing"
t_out "serve --help keeps the old flag names" "also --handshake-timeout\)" "$HEARTH" serve --help

# serve refuses a bad configuration, clearly and before it starts anything.
printf 'max_packet = 1024\nmqtt = nowhere\n' > "$D/hearth.conf"
timeout 20 "$HEARTH" serve --data "$D" > "$T/serve.out" 2>&1; rc=$?
t_eq "serve exits 1 on a bad file" 1 "$rc"
t_out "serve names the file's bad line" "^hearth serve: $D/hearth.conf:2: mqtt: 'nowhere' is not HOST:PORT$" cat "$T/serve.out"
t_fails "serve started nothing" grep -q "listening" "$T/serve.out"
cp "$T/good.conf" "$D/hearth.conf"
timeout 20 env HEARTH_MAX_PACKET=8 "$HEARTH" serve --data "$T/fresh" > "$T/serve.out" 2>&1; rc=$?
t_eq "serve exits 1 on a bad variable" 1 "$rc"
t_out "serve names the variable" "^hearth serve: HEARTH_MAX_PACKET: 8 is out of range \(16\.\.268435456\)$" cat "$T/serve.out"
t_fails "a bad configuration initialises no data directory" test -e "$T/fresh"
timeout 20 "$HEARTH" serve --data "$D" --max-inflight 0 > "$T/serve.out" 2>&1; rc=$?
t_eq "serve exits 2 on a bad flag" 2 "$rc"
t_out "serve names the flag" "^hearth serve: --max-inflight: 0 is out of range \(1\.\.65535\)$" cat "$T/serve.out"
timeout 20 "$HEARTH" serve --data "$D" --max-inflite 3 > "$T/serve.out" 2>&1; rc=$?
t_eq "serve exits 2 on an unknown flag" 2 "$rc"
t_out "serve names the unknown flag" "unknown option '--max-inflite'" cat "$T/serve.out"

# serve runs with what the file says: here, the address (a free port, not the default).
printf 'mqtt = 127.0.0.1:0\nmax_packet = 1048576\napi = 127.0.0.1:0\n' > "$D/hearth.conf"
start_bg "$HEARTH" serve --data "$D"
SERVE_LOG=$T/bg.$$.log
t "serve listens where the file says" wait_for 20 grep -q 'listening on 127.0.0.1:' "$SERVE_LOG"
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$SERVE_LOG" | head -1)
t "on a port it picked (port 0), not the default" test -n "$port" -a "$port" != 8883
kill -TERM "$BG_PID"
t "serve stops cleanly" wait "$BG_PID"
# ...and a flag still beats the file; the old flag names still start it.
start_hearth "$D" --handshake-timeout 2000 --connect-timeout 2000 --max-connections 10 \
	--max-inflight 4 --max-subscriptions 4 --max-queued 10 --max-packet 4096 --handshake-threads 0 \
	&& ok "serve starts with every old flag" || nok "serve starts with every old flag"
stop_hearth
t_fails "no sanitizer report from serve" grep -Eq 'Sanitizer|runtime error:' "$T"/bg.*.log "$T"/serve.*.log

# A container volume may hold only hearth.conf before the first start: serve initialises it.
mkdir -m 700 "$T/vol" && printf 'mqtt = 127.0.0.1:0\n' > "$T/vol/hearth.conf"
start_hearth "$T/vol" && ok "serve initialises a directory that holds only hearth.conf" \
	|| nok "serve initialises a directory that holds only hearth.conf"
t "the directory was initialised" test -e "$T/vol/hearth.db"
stop_hearth

# SIGHUP: a lower max_packet in the file applies to the running server at once.
O=$T/out
"$HEARTH" device add --data "$T/vol" --id d1 --model m --genkey --out "$O" >/dev/null 2>&1
start_hearth "$T/vol"
head -c 3000 /dev/urandom | base64 -w0 > "$T/p4k"
t_out "a 4 KB publish is accepted under the default max_packet" "received PUBACK" \
	mosq_pub d1 -i d1 -t hearth/v1/d1/telemetry -f "$T/p4k" -q 1 -d
printf 'mqtt = 127.0.0.1:0\nmax_packet = 1024\nlog_level = debug\n' > "$T/vol/hearth.conf"
kill -HUP "$HPID"
t "SIGHUP reloads the configuration" wait_for 5 grep -q "max_packet" "$HLOG"
t_fails "after SIGHUP the same publish is refused (max_packet 1024)" \
	mosq_pub d1 -i d1 -t hearth/v1/d1/telemetry -f "$T/p4k" -q 1
t "the log says why" wait_for 5 grep -q "packet larger than the maximum packet size" "$HLOG"
printf 'mqtt = 127.0.0.1:0\nmax_packet = nonsense\n' > "$T/vol/hearth.conf"
kill -HUP "$HPID"
t "a bad file on SIGHUP is refused, naming the line" wait_for 5 grep -q "configuration not reloaded.*hearth.conf:2" "$HLOG"
t "and the server keeps running" kill -0 "$HPID"
stop_hearth
t_fails "no sanitizer report after the reloads" grep -Eq 'Sanitizer|runtime error:' "$HLOG"

# The REST API: plain HTTP only when asked, and only on loopback.
printf 'mqtt = 127.0.0.1:0\n' > "$T/vol/hearth.conf"
timeout 20 "$HEARTH" serve --data "$T/vol" --mqtt 127.0.0.1:0 --api 0.0.0.0:0 --api-plain yes > "$T/serve.out" 2>&1; rc=$?
t_eq "plain HTTP on a non-loopback address is refused" 1 "$rc"
t_out "... saying why" "plain HTTP is only allowed on a loopback address" cat "$T/serve.out"
start_hearth "$T/vol" --api-plain yes || nok "serve starts with api_plain on loopback"
t_out "on loopback it serves plain HTTP when asked" "^ok$" curl -sS --max-time 5 "http://127.0.0.1:$API_PORT/healthz"
t_out "and warns about it" "plain HTTP" cat "$HLOG"
stop_hearth
start_hearth "$T/vol" || nok "serve starts"
t_out "by default the API speaks HTTPS, verifiable with the CA" "^ok$" curl -sS --max-time 5 --cacert "$T/vol/certs/ca.pem" "https://127.0.0.1:$API_PORT/healthz"
t_fails "and no plain HTTP" curl -sS --max-time 5 -f "http://127.0.0.1:$API_PORT/healthz"
t_fails "TLS 1.1 is refused" curl -sS --max-time 5 --cacert "$T/vol/certs/ca.pem" --tls-max 1.1 "https://127.0.0.1:$API_PORT/healthz"
stop_hearth
