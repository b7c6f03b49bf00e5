#!/bin/bash
# The home-lab image (docker/) end to end, against a real Docker engine: builds it with compose
# (docker/compose.yml + docker/compose.test.yml), starts it, waits for its health check, enrolls a
# device over the REST API, publishes over MQTT with mosquitto_pub, restarts the container and
# checks that the data and the CA survived and that it stopped cleanly on SIGTERM; then backs it up
# and restores it into a fresh volume with the commands docker/README.md gives.
#
# Needs root: installs what is missing (docker.io, docker-compose, debootstrap, mosquitto-clients)
# and, when no engine answers, starts its own dockerd (no bridge, no iptables, everything under a
# temp dir). A missing debian:bookworm-slim is made with debootstrap from the host's apt mirror.
# The container runs with host networking, listening on 127.0.0.1 only, on free ports. Everything
# it started or made is removed at the end. Prints "SKIP: ..." and exits 0 only when no engine can
# run here at all.
#   DOCKER   the docker client (default /usr/bin/docker, docker.io's, which matches its dockerd)
#   KEEP=1   keep the temp dir (logs) at the end
set -u
cd "$(dirname "$0")/../.."
T=$(mktemp -d /tmp/hearth-docker.XXXXXX)
passed=0 failed=0
START_MS=$(( $(date +%s%N) / 1000000 ))

DOCKER=${DOCKER:-/usr/bin/docker}
PROJECT=hearthdockertest$$
COMPOSE=()           # the compose command, set once it is known
STARTED_DOCKERD=0    # this script started dockerd (its pid: DOCKERD_PID)
DOCKERD_PID=""
DD=$T/dockerd        # that dockerd's roots and socket
MADE_KEY_JSON=0      # dockerd writes /etc/docker/key.json if there is none
MADE_RUN_DOCKER=0
IMPORTED_BASE=0      # debian:bookworm-slim was made here
DANGLING_BEFORE=""   # build-stage images that were there before the build

# A check's output ($T/.out) and what led to it ($T/.ctx: a log, an answer) are shown if it fails.
ok()  { passed=$((passed + 1)); echo "ok   $*"; rm -f "$T/.out" "$T/.ctx"; }
nok() {
	failed=$((failed + 1)); echo "FAIL $*"
	cat "$T/.ctx" "$T/.out" 2>/dev/null | tail -20 | sed 's/^/     | /'
	rm -f "$T/.out" "$T/.ctx"
}
ctx() { cp "$1" "$T/.ctx" 2>/dev/null; }
# t DESC CMD...: CMD succeeds
t() {
	local d=$1; shift
	if "$@" >"$T/.out" 2>&1; then ok "$d"; else nok "$d"; fi
}
# t_rc DESC RC: a step run before (its output in $T/.ctx) exited RC, which must be 0
t_rc() { if [ "$2" -eq 0 ]; then ok "$1"; else nok "$1 (exit $2)"; fi; }
# t_eq DESC EXPECTED ACTUAL
t_eq() { if [ "$2" = "$3" ]; then ok "$1"; else echo "expected [$2] got [$3]" >"$T/.out"; nok "$1"; fi; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
secs() { printf '%d.%01d' $(( $1 / 1000 )) $(( $1 % 1000 / 100 )); }
dk() { timeout 120 "$DOCKER" "$@"; }
compose() { timeout 120 "${COMPOSE[@]}" "$@"; }
# The project's compose command on the effective file (see below).
dc() { timeout "${DC_TIMEOUT:-120}" "${COMPOSE[@]}" -p "$PROJECT" -f "$T/compose.yml" "$@"; }

finish() {
	local rc=$1
	echo "tests/docker/run.sh: $(secs $(( $(now_ms) - START_MS ))) s in all"
	echo "$passed passed, $failed failed"
	[ "$rc" -eq 0 ] && [ "$failed" -ne 0 ] && rc=1
	exit "$rc"
}
skip() { echo "SKIP: $*"; cleanup; trap - EXIT; exit 0; }

cleanup() {
	local id m i
	if [ -s "$T/compose.yml" ]; then
		DC_TIMEOUT=180 dc down -v --rmi local --timeout 30 >"$T/down.log" 2>&1 ||
			echo "warning: compose down failed (see $T/down.log)"
	fi
	# The build stage's image is left dangling by a multi-stage build: remove the ones made here.
	if [ -x "$DOCKER" ] && timeout 20 "$DOCKER" info >/dev/null 2>&1; then
		for id in $(dk images -q --filter dangling=true --filter label=hearth.stage=build 2>/dev/null); do
			case " $DANGLING_BEFORE " in *" $id "*) ;; *) dk rmi -f "$id" >/dev/null 2>&1 ;; esac
		done
		[ "$IMPORTED_BASE" = 1 ] && dk rmi debian:bookworm-slim >/dev/null 2>&1
	fi
	if [ -n "$DOCKERD_PID" ]; then
		kill -TERM "$DOCKERD_PID" 2>/dev/null
		for i in $(seq 1 150); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.2; done
		if kill -0 "$DOCKERD_PID" 2>/dev/null; then
			echo "warning: dockerd $DOCKERD_PID did not stop in 30 s: killed"
			kill -KILL "$DOCKERD_PID" 2>/dev/null
		fi
		wait "$DOCKERD_PID" 2>/dev/null
	fi
	if [ "$STARTED_DOCKERD" = 1 ]; then
		# A containerd that outlived its dockerd (killed, or died) is ours too.
		if [ -s "$DD/exec/containerd/containerd.pid" ]; then
			i=$(cat "$DD/exec/containerd/containerd.pid")
			grep -q -- "$DD/exec/containerd" "/proc/$i/cmdline" 2>/dev/null && kill -KILL "$i" 2>/dev/null
		fi
		# What it leaves mounted under its roots (the netns bind mount, the data root), deepest first.
		for m in $(awk -v d="$DD" 'index($2, d "/") == 1 || $2 == d { print $2 }' /proc/mounts | sort -r); do
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || echo "warning: could not unmount $m"
		done
		[ "$MADE_KEY_JSON" = 1 ] && rm -f /etc/docker/key.json
		[ "$MADE_RUN_DOCKER" = 1 ] && rm -rf /run/docker
	fi
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap 'rc=$?; cleanup; finish $rc' EXIT
trap 'exit 130' INT TERM

# --- what it needs --------------------------------------------------------------------------------

need=""
for p in docker.io docker-compose debootstrap mosquitto-clients openssl curl python3; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need="$need $p"
done
if [ -n "$need" ]; then
	[ "$(id -u)" -eq 0 ] || skip "not root, and missing:$need"
	echo "installing$need"
	if ! { timeout 300 apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq $need; } >"$T/.out" 2>&1; then
		nok "install$need"
		exit 1
	fi
fi
COMPOSE=(docker-compose)
export COMPOSE_DOCKER_CLI_BUILD=0 DOCKER_BUILDKIT=0 # the classic builder: no buildx needed

# --- a Docker engine --------------------------------------------------------------------------------

if timeout 20 "$DOCKER" info >/dev/null 2>&1; then
	echo "using the running Docker engine"
else
	[ "$(id -u)" -eq 0 ] || skip "no Docker engine answers, and starting one needs root"
	mkdir -p "$DD/root" "$DD/exec"
	[ -e /etc/docker/key.json ] || MADE_KEY_JSON=1
	[ -e /run/docker ] || MADE_RUN_DOCKER=1
	# No bridge and no iptables: nothing on the host's network changes; containers use its network.
	STARTED_DOCKERD=1
	dockerd --bridge=none --iptables=false --data-root "$DD/root" --exec-root "$DD/exec" \
		--pidfile "$DD/dockerd.pid" --host "unix://$DD/docker.sock" >"$DD/dockerd.log" 2>&1 &
	DOCKERD_PID=$!
	export DOCKER_HOST="unix://$DD/docker.sock"
	t0=$(now_ms)
	for i in $(seq 1 300); do
		timeout 5 "$DOCKER" info >/dev/null 2>&1 && break
		kill -0 "$DOCKERD_PID" 2>/dev/null || break
		sleep 0.2
	done
	if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
		skip "dockerd cannot run here: $(grep -E 'level=(fatal|error)|failed|denied' "$DD/dockerd.log" | tail -1 | cut -c1-200)"
	fi
	ctx "$DD/dockerd.log"
	t "dockerd started (own roots under $DD, no bridge, no iptables) in $(secs $(( $(now_ms) - t0 ))) s" \
		timeout 20 "$DOCKER" info
	[ "$failed" -eq 0 ] || exit 1
fi

# --- the base image ---------------------------------------------------------------------------------

# The bookworm mirror the host's apt uses (deb822 .sources first, then one-line lists).
host_mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk 'BEGIN { RS = "" }
		     /(^|\n)Suites:[^\n]*[ \t]bookworm([ \t]|\n|$)/ && !/(^|\n)Enabled:[ \t]*no/ {
			if (match($0, /(^|\n)URIs:[ \t]*[^ \t\n]+/)) {
				s = substr($0, RSTART, RLENGTH); sub(/^\n?URIs:[ \t]*/, "", s); print s; exit
			}
		     }' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
		                   if ($(i + 1) == "bookworm") { print $i; exit } }' "$f"
	done
}

if dk image inspect debian:bookworm-slim >/dev/null 2>&1; then
	echo "using the engine's debian:bookworm-slim"
else
	mirror=$(host_mirror | head -1)
	mirror=${mirror:-http://deb.debian.org/debian}
	t0=$(now_ms)
	if ! timeout 600 debootstrap --variant=minbase bookworm "$T/rootfs" "$mirror" >"$T/.out" 2>&1; then
		nok "debootstrap bookworm from $mirror"
		exit 1
	fi
	# The host's Debian sources (those naming this mirror, or the security archive) and its
	# Acquire:: settings (proxy, validity checks), so apt inside the build reaches what it reaches.
	rm -f "$T/rootfs/etc/apt/sources.list"
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] && grep -qF -e "$mirror" -e debian-security "$f" || continue
		mkdir -p "$T/rootfs/etc/apt/sources.list.d"
		cp "$f" "$T/rootfs/etc/apt/sources.list.d/$(basename "$f" | sed 's/^sources\.list$/host.list/')"
	done
	for f in /etc/apt/apt.conf.d/*; do
		[ -r "$f" ] && grep -q 'Acquire::' "$f" && cp "$f" "$T/rootfs/etc/apt/apt.conf.d/"
	done
	rm -rf "$T"/rootfs/var/cache/apt/archives/*.deb "$T"/rootfs/var/lib/apt/lists/*
	if tar -C "$T/rootfs" -c . | timeout 300 "$DOCKER" import - debian:bookworm-slim >"$T/.out" 2>&1; then
		IMPORTED_BASE=1
		ok "made debian:bookworm-slim with debootstrap from $mirror in $(secs $(( $(now_ms) - t0 ))) s"
	else
		nok "docker import of the debootstrap root"
		exit 1
	fi
	rm -rf "$T/rootfs"
fi

# --- the compose files -------------------------------------------------------------------------------

t "docker/compose.yml is valid" compose -f docker/compose.yml config -q
t "no compose file has a version: key" sh -c '! grep -nE "^version:" docker/compose.yml docker-compose.yml docker/compose.test.yml'
compose -p x -f docker-compose.yml config 2>&1 | sort >"$T/root.cfg"
compose -p x -f docker/compose.yml config 2>&1 | sort >"$T/docker.cfg"
t "the root docker-compose.yml resolves to the same service as docker/compose.yml" \
	diff "$T/root.cfg" "$T/docker.cfg"

# Two free ports on 127.0.0.1 (nothing answers on them).
free_port() {
	local p i
	for i in $(seq 1 50); do
		p=$(( 20000 + RANDOM % 40000 ))
		[ "$p" = "${1:-}" ] && continue
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
	done
	return 1
}
MQTT_PORT=$(free_port) && API_PORT=$(free_port "$MQTT_PORT") || { echo "no free port" >"$T/.out"; nok "free ports"; exit 1; }
export HEARTH_TEST_MQTT_PORT=$MQTT_PORT HEARTH_TEST_API_PORT=$API_PORT HEARTH_TEST_NAMES=hearth.test

# The effective project: compose.yml + the test override, without the published ports. Host
# networking publishes nothing anyway, but docker-compose 1.x (docker-py) refuses ports together with
# network_mode: host, and an override file cannot remove a list.
if ! compose -p "$PROJECT" -f docker/compose.yml -f docker/compose.test.yml config >"$T/merged.yml" 2>"$T/.out"; then
	nok "compose config of compose.yml + compose.test.yml"
	exit 1
fi
awk 'skip && (/^    - / || /^      /) { next } { skip = 0 } /^    ports:$/ { skip = 1; next } { print }' \
	"$T/merged.yml" >"$T/compose.yml"
t "the test project uses host networking and publishes no port" \
	sh -c "grep -q 'network_mode: host' '$T/compose.yml' && ! grep -q 'ports:' '$T/compose.yml'"

# --- build and first start ---------------------------------------------------------------------------

DANGLING_BEFORE=$(dk images -q --filter dangling=true --filter label=hearth.stage=build 2>/dev/null | tr '\n' ' ')
t0=$(now_ms)
DC_TIMEOUT=1200 dc build >"$T/build.log" 2>&1; rc=$?
ctx "$T/build.log"
t_rc "compose build (bin/hearth in a bookworm build stage) in $(secs $(( $(now_ms) - t0 ))) s" "$rc"
[ "$rc" -eq 0 ] || exit 1

t0=$(now_ms)
t "compose up -d" dc up -d
CID=$(dc ps -q hearth 2>/dev/null | head -1)
[ -n "$CID" ] || { dc ps >"$T/.out" 2>&1; nok "the container exists"; exit 1; }
IMAGE=$(dk inspect -f '{{.Image}}' "$CID")

health() { dk inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}} {{.State.Status}}' "$CID"; }
# wait_healthy SECONDS: until the health check says healthy; fails at once if the container stops.
wait_healthy() {
	local limit=$(( $1 * 5 )) i=0 h
	while [ $i -lt $limit ]; do
		h=$(health 2>&1)
		case $h in
		"healthy running") return 0 ;;
		*exited*|*dead*) echo "container: $h"; dk logs --tail 20 "$CID" 2>&1; return 1 ;;
		esac
		sleep 0.2; i=$((i + 1))
	done
	echo "still: $h"; dk logs --tail 20 "$CID" 2>&1
	return 1
}
wait_healthy 120 >"$T/.ctx" 2>&1; rc=$?
t_rc "the health check says healthy after $(secs $(( $(now_ms) - t0 ))) s" "$rc"
[ "$rc" -eq 0 ] || exit 1

# --- the image and the process ---------------------------------------------------------------------

dk logs "$CID" >"$T/first.log" 2>&1
TOKEN=$(grep -A1 'first admin API token' "$T/first.log" | tail -1 | tr -d '\r')
ctx "$T/first.log"
t "the first start prints the first admin token once" sh -c "echo '$TOKEN' | grep -Eq '^hth_[0-9a-f]+_[0-9a-f]{64}$'"
t_eq "and keeps it in /data/admin-token" "$TOKEN" "$(dk exec "$CID" cat /data/admin-token 2>&1)"
t "which the operator deletes once read" dk exec "$CID" rm /data/admin-token
# A root shell in a throwaway container of the image (to see every file), with no network and a
# fresh anonymous /data.
in_image() { dk run --rm --network none --user 0 --entrypoint sh "$IMAGE" -c "$1" 2>&1; }
t_eq "the image's /data is empty (nothing made at build time)" "" "$(in_image 'ls -A /data')"
t_eq "no key file, token, database or PEM private key anywhere in the image" "" \
	"$(in_image 'find / -xdev -type f \( -name "*.key" -o -name admin-token -o -name "hearth.db*" -o -name "*.hearth-backup" \) -print
		find / -xdev -type f -size -1M -exec grep -lIE -- "-----BEGIN ([A-Z]+ )?PRIVATE KEY-----" {} + 2>/dev/null; true')"
t "nor the token in the image's config or history" \
	sh -c "! { '$DOCKER' image inspect '$IMAGE'; '$DOCKER' history --no-trunc '$IMAGE'; } 2>&1 | grep -q 'hth_'"
dk cp "$CID:/data/certs/ca.pem" "$T/ca.pem" >"$T/.ctx" 2>&1
CA_SUM=$(sha256sum <"$T/ca.pem" | cut -d' ' -f1)
t "the CA bundle copies out of the volume" openssl x509 -in "$T/ca.pem" -noout
OTHER=$(in_image 'hearth init --data /tmp/d >/dev/null && sha256sum </tmp/d/certs/ca.pem' | cut -d' ' -f1)
t "another volume gets another CA (${OTHER:0:12} != ${CA_SUM:0:12})" \
	sh -c "[ -n '$OTHER' ] && [ '$OTHER' != '$CA_SUM' ]"
t_eq "the image runs as user hearth" "hearth" "$(dk image inspect -f '{{.Config.User}}' "$IMAGE" 2>&1)"
t_eq "hearth itself is PID 1 (it gets the SIGTERM)" "hearth" "$(dk exec "$CID" cat /proc/1/comm 2>&1)"
t_eq "and runs as uid/gid 10001, not root" "10001 10001 10001 10001/10001 10001 10001 10001" \
	"$(dk exec "$CID" sh -c "awk '/^Uid:/ { u = \$2 \" \" \$3 \" \" \$4 \" \" \$5 } /^Gid:/ { g = \$2 \" \" \$3 \" \" \$4 \" \" \$5 } END { print u \"/\" g }' /proc/1/status" 2>&1)"
t_eq "/data is the user's, 0700" "700 10001" "$(dk exec "$CID" stat -c '%a %u' /data 2>&1)"

# --- the endpoint from the host ----------------------------------------------------------------------

API=https://127.0.0.1:$API_PORT
api() { curl -sS --max-time 10 --cacert "$T/ca.pem" -H "Authorization: Bearer $TOKEN" "$@"; }
t "GET /healthz over TLS verified against the volume's CA" curl -fsS --max-time 10 --cacert "$T/ca.pem" "$API/healthz"
openssl s_client -connect "127.0.0.1:$API_PORT" </dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName >"$T/san" 2>&1
ctx "$T/san"
t "the endpoint certificate names HEARTH_NAMES (hearth.test) and 127.0.0.1" \
	sh -c "grep -q 'DNS:hearth.test' '$T/san' && grep -q 'IP Address:127.0.0.1' '$T/san'"

t "PUT /api/v1/models/heater (a policy) with the admin token" \
	api -f -X PUT -H 'Content-Type: application/json' --data-binary @schema/policies/smart-heater.json "$API/api/v1/models/heater"
api -X POST -H 'Content-Type: application/json' -d '{"model": "heater"}' "$API/api/v1/enrollment-tokens" >"$T/etoken.json" 2>&1
ETOKEN=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["token"])' "$T/etoken.json" 2>/dev/null)
ctx "$T/etoken.json"
t "POST /api/v1/enrollment-tokens makes a one-time token" test -n "$ETOKEN"

openssl ecparam -name prime256v1 -genkey -noout -out "$T/dev.key" 2>/dev/null
openssl req -new -key "$T/dev.key" -subj /CN=device -out "$T/dev.csr" 2>/dev/null
python3 -c 'import json, sys; print(json.dumps({"token": sys.argv[1], "csr": open(sys.argv[2]).read()}))' \
	"$ETOKEN" "$T/dev.csr" >"$T/enroll.json"
curl -sS --max-time 10 --cacert "$T/ca.pem" -H 'Content-Type: application/json' --data-binary @"$T/enroll.json" \
	"$API/api/v1/enroll" >"$T/enrolled.json" 2>&1
DEV=$(python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); open(sys.argv[2], "w").write(d["certificate"]); print(d["device_id"])' \
	"$T/enrolled.json" "$T/dev.crt" 2>/dev/null)
ctx "$T/enrolled.json"
t "a device enrolls with its own P-256 CSR (POST /api/v1/enroll)" test -n "$DEV"
t "its certificate verifies against the CA bundle" openssl verify -CAfile "$T/ca.pem" "$T/dev.crt"

publish() {
	timeout 20 mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" --cafile "$T/ca.pem" --cert "$T/dev.crt" --key "$T/dev.key" \
		-i "$DEV" -t "hearth/v1/$DEV/telemetry" -m "{\"temperature\": $1}" -q 1
}
last_seen() { api "$API/api/v1/devices/$DEV" | python3 -c 'import json, sys; print(json.load(sys.stdin)["last_seen"])'; }
t_eq "the device has not been seen yet" "None" "$(last_seen 2>&1)"
t "mosquitto_pub publishes telemetry over mTLS, QoS 1 (PUBACK)" publish 21.5
SEEN=$(last_seen 2>&1)
t "and hearth saw the device (last_seen $SEEN)" test "$SEEN" -gt 0

# --- stop and start ----------------------------------------------------------------------------------

t0=$(now_ms)
t "compose stop" dc stop
STOP_MS=$(( $(now_ms) - t0 ))
t "it stopped in $(secs "$STOP_MS") s, well within the 30 s grace period (SIGTERM, not SIGKILL)" test "$STOP_MS" -lt 10000
t_eq "exit code 0" "0 exited" "$(dk inspect -f '{{.State.ExitCode}} {{.State.Status}}' "$CID" 2>&1)"
dk logs "$CID" >"$T/stop.log" 2>&1
t "hearth logged the signal and stopped" sh -c "tail -5 '$T/stop.log' && grep -q 'signal 15: shutting down' '$T/stop.log' && grep -q 'stopped:' '$T/stop.log'"

t0=$(now_ms)
t "compose start" dc start
wait_healthy 120 >"$T/.ctx" 2>&1; rc=$?
t_rc "healthy again after $(secs $(( $(now_ms) - t0 ))) s" "$rc"
dk cp "$CID:/data/certs/ca.pem" "$T/ca2.pem" >"$T/.ctx" 2>&1
t_eq "the same CA after the restart" "$CA_SUM" "$(sha256sum <"$T/ca2.pem" | cut -d' ' -f1)"
dk logs "$CID" >"$T/restart.log" 2>&1
t_eq "the volume was initialised once only" 1 "$(grep -c '^initialised /data' "$T/restart.log")"
api "$API/api/v1/devices" >"$T/devices.json" 2>&1
ctx "$T/devices.json"
t "the admin token still works and the device is still listed" \
	python3 -c 'import json, sys; ids = [d["id"] for d in json.load(open(sys.argv[1]))["items"]]; sys.exit(sys.argv[2] not in ids)' \
	"$T/devices.json" "$DEV"
t "the device publishes again" publish 22.0


# --- backup, and restore into a fresh volume (the commands docker/README.md gives) ---------------------

BK=/data/backups/test.hearth-backup
t "compose exec: mkdir -p /data/backups" dc exec -T hearth mkdir -p /data/backups
t "compose exec: hearth backup --data /data --out $BK (while it runs)" \
	dc exec -T hearth hearth backup --data /data --out "$BK"
(umask 077; dc exec -T hearth cat "$BK" >"$T/test.hearth-backup" 2>"$T/.ctx")
t_eq "copied out with compose exec -T ... cat, 0600" "600 SQLite format 3" \
	"$(stat -c %a "$T/test.hearth-backup") $(head -c 15 "$T/test.hearth-backup")"
t "compose down -v (the volume is gone)" dc down -v --timeout 30
t "the container can read the copy once it is the hearth user's" chown 10001:10001 "$T/test.hearth-backup"
t "compose run --rm hearth restore --data /data --from FILE, into a fresh volume" \
	dc run --rm -T -v "$T/test.hearth-backup:/restore/test.hearth-backup:ro" hearth \
	restore --data /data --from /restore/test.hearth-backup
t0=$(now_ms)
t "compose up -d on the restored volume" dc up -d
CID=$(dc ps -q hearth 2>/dev/null | head -1)
wait_healthy 120 >"$T/.ctx" 2>&1; rc=$?
t_rc "healthy after $(secs $(( $(now_ms) - t0 ))) s" "$rc"
dk cp "$CID:/data/certs/ca.pem" "$T/ca3.pem" >"$T/.ctx" 2>&1
t_eq "the restored volume has the same CA" "$CA_SUM" "$(sha256sum <"$T/ca3.pem" | cut -d' ' -f1)"
dk logs "$CID" >"$T/restored.log" 2>&1
t "and was not initialised again (it logged: serving /data)" \
	sh -c "cat '$T/restored.log' && grep -q 'serving /data' '$T/restored.log' && ! grep -q '^initialised /data' '$T/restored.log'"
api "$API/api/v1/devices" >"$T/devices.json" 2>&1
ctx "$T/devices.json"
t "the admin token works again and the device is listed" \
	python3 -c 'import json, sys; ids = [d["id"] for d in json.load(open(sys.argv[1]))["items"]]; sys.exit(sys.argv[2] not in ids)' \
	"$T/devices.json" "$DEV"
t "the device publishes to the restored server" publish 22.5

exit 0
