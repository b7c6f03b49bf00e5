# hearth device add: CSR signing under the CA's profile, hostile CSRs refused, --genkey.
. "$(dirname "$0")/lib.sh"
D=$T/data
O=$T/out
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
ext() { openssl x509 -in "$2" -noout -ext "$1" 2>/dev/null | tr -s ' \n' ' ' | sed 's/ $//'; }
add() { "$HEARTH" device add --data "$D" --model heater --out "$O" "$@"; }

# A good CSR that asks for much more than it may have: CA:TRUE is refused further down; here it
# asks for SANs, serverAuth and keyCertSign, and gets none of them.
make_csr "$T/greedy.csr" -addext "subjectAltName=DNS:evil.example,IP:10.1.2.3" \
	-addext "extendedKeyUsage=serverAuth,clientAuth" -addext "keyUsage=keyCertSign,digitalSignature" \
	-subj "/CN=admin/O=Bank"
t "a P-256 CSR is signed" add --id dev-1 --csr "$T/greedy.csr"
crt=$O/dev-1.crt
t "the device certificate verifies against ca.pem (openssl verify)" openssl verify -CAfile "$O/ca.pem" "$crt"
t "it verifies for TLS client use (purpose sslclient)" openssl verify -purpose sslclient -CAfile "$O/ca.pem" "$crt"
t_fails "it does not verify for TLS server use" openssl verify -purpose sslserver -CAfile "$O/ca.pem" "$crt"
t_eq "subject is exactly CN = device id" "subject=CN = dev-1" "$(openssl x509 -in "$crt" -noout -subject)"
t_eq "extended key usage is clientAuth only" "X509v3 Extended Key Usage: TLS Web Client Authentication" "$(ext extendedKeyUsage "$crt")"
t_eq "key usage is digitalSignature only" "X509v3 Key Usage: critical Digital Signature" "$(ext keyUsage "$crt")"
t_eq "not a CA" "X509v3 Basic Constraints: CA:FALSE" "$(ext basicConstraints "$crt")"
t_eq "requested SANs are ignored" "" "$(ext subjectAltName "$crt")"
t "the certificate holds the CSR's public key" sh -c "[ \"\$(openssl x509 -in '$crt' -noout -pubkey)\" = \"\$(openssl pkey -in '$T/greedy.csr.key' -pubout)\" ]"
end=$(date -d "$(openssl x509 -in "$crt" -noout -enddate | cut -d= -f2)" +%s)
t_eq "default life is one year" 365 "$(( (end - $(date +%s) + 600) / 86400 ))"
t_eq "ca.pem written beside it" 2 "$(grep -c 'BEGIN CERTIFICATE' "$O/ca.pem")"
t_eq "the certificate is recorded with its fingerprint" \
	"$(openssl x509 -in "$crt" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f)" \
	"$(sqlite3 "$D/hearth.db" "SELECT fingerprint FROM certificates WHERE device_id = 'dev-1'")"
t_eq "the recorded serial is openssl's" "$(openssl x509 -in "$crt" -noout -serial | cut -d= -f2)" \
	"$(sqlite3 "$D/hearth.db" "SELECT serial FROM certificates WHERE device_id = 'dev-1'")"
t_eq "the addition is audited" "device.add dev-1" "$(sqlite3 "$D/hearth.db" "SELECT action || ' ' || target FROM audit_log WHERE action = 'device.add'")"

make_csr "$T/plain.csr"
t "--days sets the life" add --id dev-days --csr "$T/plain.csr" --days 10
end=$(date -d "$(openssl x509 -in "$O/dev-days.crt" -noout -enddate | cut -d= -f2)" +%s)
t_eq "--days 10 gives 10 days" 10 "$(( (end - $(date +%s) + 600) / 86400 ))"
openssl req -in "$T/plain.csr" -outform der -out "$T/plain.der"
t "a DER CSR is accepted" add --id dev-der --csr "$T/plain.der"
openssl req -new -newkey rsa:2048 -nodes -subj /CN=r -keyout "$T/rsa2048.key" -out "$T/rsa2048.csr" 2>/dev/null
t "an RSA-2048 CSR is accepted" add --id dev-rsa --csr "$T/rsa2048.csr"
t "the RSA device certificate verifies" openssl verify -CAfile "$O/ca.pem" "$O/dev-rsa.crt"

# Hostile and malformed requests: refused with a reason, and nothing recorded.
refused() { # DESC REGEX ID CSR
	t_out "$1: refused with a clear reason" "$2" add --id "$3" --csr "$4"
	t_fails "$1: exit status says so" add --id "$3" --csr "$4"
	t_eq "$1: no device recorded" 0 "$(sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM devices WHERE id = '$3'")"
	t_fails "$1: no certificate written" test -e "$O/$3.crt"
}
make_csr "$T/ca.csr" -addext "basicConstraints=critical,CA:TRUE"
refused "CSR asking for CA:TRUE" "certificate authority" x-ca "$T/ca.csr"
cp "$T/plain.der" "$T/badsig.der"
flip_byte "$T/badsig.der" $(( $(stat -c %s "$T/badsig.der") - 3 ))
refused "CSR with a bad signature" "signature" x-sig "$T/badsig.der"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:secp384r1 -nodes -subj /CN=x -keyout /dev/null -out "$T/p384.csr" 2>/dev/null
refused "CSR with a P-384 key" "P-256" x-p384 "$T/p384.csr"
openssl req -new -newkey rsa:1024 -nodes -subj /CN=x -keyout /dev/null -out "$T/rsa1024.csr" 2>/dev/null
refused "CSR with an RSA-1024 key" "2048" x-rsa1024 "$T/rsa1024.csr"
head -c 20000 /dev/urandom > "$T/big.csr"
refused "an oversize CSR" "larger than" x-big "$T/big.csr"
head -c 700 /dev/urandom > "$T/garbage.csr"
refused "garbage" "CSR refused" x-garbage "$T/garbage.csr"
head -c 300 "$T/plain.csr" > "$T/truncated.csr"
refused "a truncated CSR" "CSR refused" x-trunc "$T/truncated.csr"
: > "$T/empty.csr"
refused "an empty file" "CSR refused" x-empty "$T/empty.csr"
refused "a certificate instead of a CSR" "CSR refused" x-cert "$D/certs/root.crt"
t_out "a missing CSR file is named" "nope.csr" add --id x-missing --csr "$T/nope.csr"

# Bad identities and arguments.
t_out "a device id with a space is refused" "must match" add --id "a b" --csr "$T/plain.csr"
t_out "a device id with a slash is refused" "must match" add --id "../x" --csr "$T/plain.csr"
t_out "a 65-character id is refused" "must match" add --id "$(printf 'a%.0s' $(seq 65))" --csr "$T/plain.csr"
t_out "a duplicate id is refused" "already exists" add --id dev-1 --csr "$T/plain.csr"
t_eq "the duplicate did not replace the first certificate" 1 "$(sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM certificates WHERE device_id = 'dev-1'")"
t_out "--csr and --genkey together are refused" "one of --csr or --genkey" add --id y --csr "$T/plain.csr" --genkey
t_out "a bad model name is refused" "model" "$HEARTH" device add --data "$D" --model 'a;b' --csr "$T/plain.csr" --out "$O"

# --genkey: the key is made here, 0600, and matches its certificate.
t "--genkey makes the key pair" add --id dev-gen --genkey
t_eq "the generated key is 0600" 600 "$(mode_of "$O/dev-gen.key")"
t "the generated key matches its certificate" sh -c "[ \"\$(openssl x509 -in '$O/dev-gen.crt' -noout -pubkey)\" = \"\$(openssl pkey -in '$O/dev-gen.key' -pubout)\" ]"
t "the generated key is P-256" sh -c "openssl pkey -in '$O/dev-gen.key' -noout -text | grep -q 'NIST CURVE: P-256'"
t_out "without --id a random opaque id is made" "device [0-9a-f]{32} added" add --genkey
t_eq "the key is not in the database" 0 "$(grep -c 'PRIVATE KEY' "$D/hearth.db")"

# hearth device list.
"$HEARTH" device list --data "$D" > "$T/list" 2>&1
t_out "device list shows id, model, status and expiry" "^dev-1 +heater +active +20[0-9]{2}-[0-9]{2}-[0-9]{2}" cat "$T/list"
t_eq "device list shows every added device" 6 "$(grep -c ' active ' "$T/list")"
