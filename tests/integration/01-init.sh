# hearth init: the data directory, its permissions, the database and its schema version.
. "$(dirname "$0")/lib.sh"
D=$T/data

t "init creates a new data directory" "$HEARTH" init --data "$D"
t_eq "data directory is 0700" 700 "$(mode_of "$D")"
t_eq "keys/ is 0700" 700 "$(mode_of "$D/keys")"
for k in root issuing endpoint manifest; do
	t_eq "keys/$k.key is 0600" 600 "$(mode_of "$D/keys/$k.key")"
	t "keys/$k.key is an EC P-256 key (openssl)" sh -c "openssl pkey -in '$D/keys/$k.key' -noout -text | grep -q 'NIST CURVE: P-256'"
done
t_eq "no private key in the database" 0 "$(grep -c 'PRIVATE KEY' "$D/hearth.db")"
t_eq "database is in WAL mode" wal "$(sqlite3 "$D/hearth.db" 'PRAGMA journal_mode')"
t_eq "schema version = newest migration" "$(ls schema/migrations/*.sql | wc -l)" "$(sqlite3 "$D/hearth.db" 'SELECT MAX(version) FROM schema_version')"
t_eq "CA and endpoint certificates recorded" "endpoint issuing root" \
	"$(sqlite3 "$D/hearth.db" "SELECT group_concat(kind, ' ') FROM (SELECT kind FROM certificates ORDER BY kind)")"
t_eq "init is in the audit log" 1 "$(sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM audit_log WHERE action = 'datadir.init'")"

# A second init changes nothing, byte for byte, and says so.
before=$(cd "$D" && find . -type f ! -name '*-wal' ! -name '*-shm' -print0 | sort -z | xargs -0 sha256sum)
t_out "init twice says nothing changed" "already initialised; nothing changed" "$HEARTH" init --data "$D"
after=$(cd "$D" && find . -type f ! -name '*-wal' ! -name '*-shm' -print0 | sort -z | xargs -0 sha256sum)
t_eq "init twice leaves every file as it was" "$before" "$after"

# A directory with other files is not ours to fill.
mkdir -p "$T/other" && echo hello > "$T/other/file"
t_fails "init refuses a non-empty foreign directory" "$HEARTH" init --data "$T/other"
t_eq "the foreign file is untouched" hello "$(cat "$T/other/file")"

# An existing empty directory (a fresh container volume) is initialised and tightened to 0700.
mkdir -m 755 "$T/empty"
t "init accepts an existing empty directory" "$HEARTH" init --data "$T/empty"
t_eq "an existing empty directory becomes 0700" 700 "$(mode_of "$T/empty")"

# Names for the endpoint certificate.
t "init --name sets the endpoint SANs" "$HEARTH" init --data "$T/named" --name hearth.lan --name 10.0.0.7 --name ::1
t_out "endpoint SANs are exactly the names given" "DNS:hearth.lan, IP Address:10.0.0.7, IP Address:0:0:0:0:0:0:0:1" \
	openssl x509 -in "$T/named/certs/endpoint.crt" -noout -ext subjectAltName
t_out "endpoint subject CN is the first name" "CN ?= ?hearth.lan" openssl x509 -in "$T/named/certs/endpoint.crt" -noout -subject
t_fails "init refuses a name that is neither DNS nor IP" "$HEARTH" init --data "$T/badname" --name 'bad,name'
t_fails "a refused name creates nothing" test -e "$T/badname"
t_out "init refuses unknown options with usage" "usage:" "$HEARTH" init --data "$T/x" --bogus
t_out "init refuses an out-of-range --endpoint-days" "endpoint-days" "$HEARTH" init --data "$T/x" --endpoint-days 9999

# A database written by a newer hearth is refused with a clear message, and left alone.
cp -r "$D" "$T/newer"
sqlite3 "$T/newer/hearth.db" "INSERT INTO schema_version (version, name, applied_at) VALUES (999, 'future', 0)"
t_out "a newer schema is refused clearly" "schema version 999 is newer than this hearth understands" \
	"$HEARTH" device list --data "$T/newer"
t_fails "commands fail on a newer schema" "$HEARTH" device list --data "$T/newer"
t_eq "the newer database is not modified" 999 "$(sqlite3 "$T/newer/hearth.db" 'SELECT MAX(version) FROM schema_version')"

# A data directory others can read is refused: it holds private keys.
cp -r "$D" "$T/loose" && chmod 755 "$T/loose"
t_out "a world-readable data directory is refused" "accessible to other users" "$HEARTH" device list --data "$T/loose"
chmod 644 "$T/loose/keys/issuing.key" && chmod 700 "$T/loose"
t_out "a world-readable issuing key is refused" "accessible to other users" "$HEARTH" ca crl --data "$T/loose" --out "$T/crl.pem"

# hearth serve initialises an empty directory first, then runs until SIGTERM.
start_bg "$HEARTH" serve --data "$T/served" --api 127.0.0.1:0
t "serve initialises a missing data directory" wait_for 20 test -e "$T/served/hearth.db"
t "serve is still running after start-up" kill -0 "$BG_PID"
kill -TERM "$BG_PID"
t "serve stops cleanly on SIGTERM" wait "$BG_PID"
t "the served directory verifies with openssl" openssl verify -CAfile "$T/served/certs/ca.pem" "$T/served/certs/endpoint.crt"
t_fails "serve's log has no sanitizer report" grep -Eq 'Sanitizer|runtime error:' "$T"/bg.*.log
