# Backup and restore: a consistent copy taken while the server ingests telemetry, refused where it
# would overwrite or restore something unsound, and a restored directory that is the same
# installation (CA, devices, tokens, firmware) to its devices and API clients.
. "$(dirname "$0")/lib.sh"
D=$T/data
O=$T/out
B=$T/backup.db
R=$T/restored
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
"$HEARTH" model set --data "$D" --model heater --policy schema/policies/smart-heater.json >/dev/null 2>&1 || nok "model set"
for id in h1 h2; do
	"$HEARTH" device add --data "$D" --id $id --model heater --genkey --out "$O" >/dev/null 2>&1 || nok "add $id"
done
head -c 100000 /dev/urandom > "$T/image.bin"
t "a firmware release" "$HEARTH" firmware add --data "$D" --model heater --version 1.0.0 --file "$T/image.bin"
printf 'max_packet = 65536\n' > "$D/hearth.conf"
TOKEN=$(new_token backup-reader read)
start_hearth "$D" || { nok "hearth serve starts"; exit 1; }
t_out "the token works against the original server" "HTTP 200" api "$TOKEN" GET /api/v1/devices

# Telemetry from h1, one acknowledged (QoS 1) message after another, while the backups are taken.
published() { if [ -e "$T/published" ]; then wc -l < "$T/published"; else echo 0; fi; }
at_least() { [ "$(published)" -ge "$1" ]; }
publish_loop() {
	local i=0
	while [ $i -lt 600 ] && [ ! -e "$T/stop" ]; do
		mosq_pub h1 -i h1 -t hearth/v1/h1/telemetry -q 1 -m "{\"temperature\": 2$((i % 10))}" >/dev/null 2>&1 &&
			echo ok >> "$T/published"
		i=$((i + 1))
	done
}
publish_loop & PUB=$!
BG_PIDS="$BG_PIDS $PUB"
t "telemetry is flowing" wait_for 60 at_least 3
before=$(published)
t "hearth backup while the server writes" "$HEARTH" backup --data "$D" --out "$B"
after=$(published)
cp "$T/.out" "$T/backup.out"
t_out "it says what it saved" "schema [0-9]+, [0-9]+ tables, [0-9]+ rows; 11 files, [0-9]+ bytes" cat "$T/backup.out"
t_out "and that it holds the private keys" "private keys" cat "$T/backup.out"
t "... and more backups while it writes" sh -c "for i in 1 2 3; do '$HEARTH' backup --data '$D' --out '$T/more.'\$i.db || exit 1; done"
t "telemetry went on after the backups" wait_for 60 at_least $((after + 3))
touch "$T/stop"
wait "$PUB"
t_eq "the backup file is 0600" 600 "$(mode_of "$B")"
t_eq "the backup passes SQLite's integrity check" ok "$(sqlite3 "$B" 'PRAGMA integrity_check')"
for i in 1 2 3; do
	t_eq "... so does backup $i" ok "$(sqlite3 "$T/more.$i.db" 'PRAGMA integrity_check')"
done
n=$(sqlite3 "$B" "SELECT COALESCE(SUM(n), 0) FROM telemetry WHERE device_id = 'h1' AND field = 'temperature'")
t "the backup is a snapshot: it holds every message acknowledged before it started ($before <= $n)" test "$n" -ge "$before"
t "... and none from after it ended ($n <= $after + 1 in flight)" test "$n" -le $((after + 1))
t_eq "it holds no -wal beside it: one self-contained file" "" "$(ls "$B"-* 2>/dev/null)"
t_eq "it records format 1 and the source" "1|$(cd "$D" && pwd -P)" \
	"$(sqlite3 "$B" "SELECT (SELECT value FROM hearth_backup_meta WHERE key = 'format') || '|' || (SELECT value FROM hearth_backup_meta WHERE key = 'source')")"
t_eq "the backup is in the source's audit log" 4 \
	"$(sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM audit_log WHERE action = 'backup.create' AND actor LIKE 'cli:%'")"
sum=$(sha256sum < "$B")
t_fails "a second backup to the same file is refused" "$HEARTH" backup --data "$D" --out "$B"
t_eq "... and the file is unchanged" "$sum" "$(sha256sum < "$B")"
ln -s /etc/hostname "$D/certs/link.pem"
t_out "a symlink in the directory is refused, by name" "certs/link.pem is a symbolic link" \
	"$HEARTH" backup --data "$D" --out "$T/with-link.db"
t_eq "... and no backup file is left" "" "$(ls "$T"/with-link.db* 2>/dev/null)"
rm -f "$D/certs/link.pem"

# Refusals: nothing is written.
mkdir "$T/full" && echo keep > "$T/full/mine"
t_fails "restore into a non-empty directory is refused" "$HEARTH" restore --data "$T/full" --from "$B"
t_eq "... and it is untouched" "mine" "$(ls "$T/full")"
cp "$B" "$T/truncated.db"
truncate -s $(( $(stat -c %s "$B") / 2 )) "$T/truncated.db"
t_out "a truncated backup is refused" "not a usable hearth backup" "$HEARTH" restore --data "$T/r1" --from "$T/truncated.db"
t "... and no directory is made" test ! -e "$T/r1"
cp "$B" "$T/evil.db"
sqlite3 "$T/evil.db" "INSERT INTO hearth_backup_files VALUES ('../x', 420, X'41')"
t_out "a backup with a '../x' path is refused" "not one a backup may hold: '../x'" \
	"$HEARTH" restore --data "$T/r2" --from "$T/evil.db"
t "... and nothing is written, there or outside" test ! -e "$T/r2" -a ! -e "$T/x"
cp "$B" "$T/evil2.db"
sqlite3 "$T/evil2.db" "INSERT INTO hearth_backup_files VALUES ('/tmp/hearth-backup-abs-$$', 420, X'41')"
t_fails "a backup with an absolute path is refused" "$HEARTH" restore --data "$T/r3" --from "$T/evil2.db"
t "... and nothing is written" test ! -e "$T/r3" -a ! -e "/tmp/hearth-backup-abs-$$"

# The restore.
stop_hearth
t "hearth restore into a new directory" "$HEARTH" restore --data "$R" --from "$B"
t_eq "the restored directory is 0700" 700 "$(mode_of "$R")"
for k in "$R"/keys/*; do
	t_eq "restored $(basename "$k") is 0600" 600 "$(mode_of "$k")"
done
t_eq "the same keys" "$(cd "$D/keys" && sha256sum *)" "$(cd "$R/keys" && sha256sum *)"
t "the same firmware image" cmp "$D/firmware/$(ls "$D/firmware")" "$R/firmware/$(ls "$D/firmware")"
t "the same hearth.conf" cmp "$D/hearth.conf" "$R/hearth.conf"
fingerprints() { "$HEARTH" ca show --data "$1" | grep -E '^  (sha256|pin|keyid) '; }
t "ca show works on the restored directory" fingerprints "$R"
t_eq "ca show: the same fingerprints, pin and manifest key" "$(fingerprints "$D")" "$(fingerprints "$R")"
t_eq "device list: the same devices" "$("$HEARTH" device list --data "$D")" "$("$HEARTH" device list --data "$R")"
t_eq "firmware list: the same release" "$("$HEARTH" firmware list --data "$D")" "$("$HEARTH" firmware list --data "$R")"
t_eq "the restored store passes the integrity check" ok "$(sqlite3 "$R/hearth.db" 'PRAGMA integrity_check')"
t_eq "it holds all the backed-up telemetry" "$n" \
	"$(sqlite3 "$R/hearth.db" "SELECT SUM(n) FROM telemetry WHERE device_id = 'h1' AND field = 'temperature'")"
t_eq "it has no backup tables" 0 "$(sqlite3 "$R/hearth.db" "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'hearth_backup%'")"
t_eq "and no private key in it" 0 "$(grep -c 'PRIVATE KEY' "$R/hearth.db" || true)"
t_eq "the restore is in the restored audit log" 1 \
	"$(sqlite3 "$R/hearth.db" "SELECT COUNT(*) FROM audit_log WHERE action = 'backup.restore' AND actor LIKE 'cli:%'")"
t_fails "a second restore over it is refused" "$HEARTH" restore --data "$R" --from "$B"

D=$R # api verifies with the restored CA bundle
start_hearth "$R" || { nok "hearth serve starts on the restored directory"; exit 1; }
t_out "a token made before the backup works against the restored server" "HTTP 200" api "$TOKEN" GET /api/v1/devices
t_out "... and sees the devices" '"h2"' api "$TOKEN" GET /api/v1/devices
t "a device connects to the restored server with its old certificate (QoS 1 acknowledged)" \
	mosq_pub h2 -i h2 -t hearth/v1/h2/telemetry -q 1 -m '{"temperature": 19}'
t "h1 too" mosq_pub h1 -i h1 -t hearth/v1/h1/telemetry -q 1 -m '{"temperature": 19}'
stop_hearth
t_fails "no sanitizer report" grep -Eq 'Sanitizer|runtime error:' "$T"/serve.*.log
