# The CA hearth makes: checked with the openssl command line, which nobody here wrote.
. "$(dirname "$0")/lib.sh"
D=$T/data
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
C=$D/certs

t "root is self-signed and verifies" openssl verify -CAfile "$C/root.crt" "$C/root.crt"
t "issuing CA verifies against the root" openssl verify -CAfile "$C/root.crt" "$C/issuing.crt"
t "endpoint verifies against the chain" openssl verify -CAfile "$C/root.crt" -untrusted "$C/issuing.crt" "$C/endpoint.crt"
t "endpoint verifies as a TLS server (purpose sslserver)" openssl verify -purpose sslserver -CAfile "$C/ca.pem" "$C/endpoint.crt"
t_fails "endpoint does not verify as a TLS client" openssl verify -purpose sslclient -CAfile "$C/ca.pem" "$C/endpoint.crt"
t "ca.pem holds the issuing CA and the root" sh -c "[ \$(grep -c 'BEGIN CERTIFICATE' '$C/ca.pem') -eq 2 ]"
t "endpoint.crt carries the issuing CA after the leaf" sh -c "[ \$(grep -c 'BEGIN CERTIFICATE' '$C/endpoint.crt') -eq 2 ]"

# ext NAME CERT: one extension on one line, e.g. "X509v3 Basic Constraints: critical CA:TRUE"
ext() { openssl x509 -in "$2" -noout -ext "$1" | tr -s ' \n' ' ' | sed 's/ $//'; }
t_eq "root: CA:TRUE, critical, no path limit" "X509v3 Basic Constraints: critical CA:TRUE" "$(ext basicConstraints "$C/root.crt")"
t_eq "root: keyCertSign and cRLSign only" "X509v3 Key Usage: critical Certificate Sign, CRL Sign" "$(ext keyUsage "$C/root.crt")"
t_eq "issuing: CA:TRUE with path length 0" "X509v3 Basic Constraints: critical CA:TRUE, pathlen:0" "$(ext basicConstraints "$C/issuing.crt")"
t_eq "issuing: keyCertSign and cRLSign only" "X509v3 Key Usage: critical Certificate Sign, CRL Sign" "$(ext keyUsage "$C/issuing.crt")"
t_eq "endpoint: digitalSignature only" "X509v3 Key Usage: critical Digital Signature" "$(ext keyUsage "$C/endpoint.crt")"
t_eq "endpoint: serverAuth only" "X509v3 Extended Key Usage: TLS Web Server Authentication" "$(ext extendedKeyUsage "$C/endpoint.crt")"
t_out "endpoint: not a CA" "CA:FALSE" openssl x509 -in "$C/endpoint.crt" -noout -text
t_out "endpoint: default SANs localhost and 127.0.0.1" "DNS:localhost, IP Address:127.0.0.1" openssl x509 -in "$C/endpoint.crt" -noout -ext subjectAltName
for c in root issuing endpoint; do
	t_out "$c: ECDSA P-256 key" "ASN1 OID: prime256v1" openssl x509 -in "$C/$c.crt" -noout -text
	t_out "$c: signed with ecdsa-with-SHA256" "Signature Algorithm: ecdsa-with-SHA256" openssl x509 -in "$C/$c.crt" -noout -text
	serial=$(openssl x509 -in "$C/$c.crt" -noout -serial | cut -d= -f2)
	t "$c: serial has at least 64 bits (${#serial} hex digits)" test "${#serial}" -ge 16
	t "$c: key file matches the certificate" sh -c "[ \"\$(openssl x509 -in '$C/$c.crt' -noout -pubkey)\" = \"\$(openssl pkey -in '$D/keys/$c.key' -pubout)\" ]"
done
serials=$(for c in root issuing endpoint; do openssl x509 -in "$C/$c.crt" -noout -serial; done | sort -u | wc -l)
t_eq "serials are distinct" 3 "$serials"

# Endpoint life: 30 days by default, so notAfter - now is within a few minutes of 30 days.
end=$(date -d "$(openssl x509 -in "$C/endpoint.crt" -noout -enddate | cut -d= -f2)" +%s)
life=$(( (end - $(date +%s) + 600) / 86400 ))
t_eq "endpoint certificate lives 30 days" 30 "$life"
"$HEARTH" init --data "$T/short" --endpoint-days 7 >/dev/null 2>&1
end=$(date -d "$(openssl x509 -in "$T/short/certs/endpoint.crt" -noout -enddate | cut -d= -f2)" +%s)
t_eq "--endpoint-days 7 gives a 7-day certificate" 7 "$(( (end - $(date +%s) + 600) / 86400 ))"

# hearth ca show: the same facts openssl computes.
"$HEARTH" ca show --data "$D" > "$T/show" 2>&1
pin=$(openssl x509 -in "$C/endpoint.crt" -noout -pubkey | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)
t_eq "ca show prints the endpoint pin (sha256/ of the SPKI)" "sha256/$pin" "$(awk '$1 == "pin" { print $2 }' "$T/show")"
fp=$(openssl x509 -in "$C/root.crt" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f)
t_out "ca show prints the root fingerprint" "sha256 +$fp" cat "$T/show"
t_out "ca show prints the subjects" "CN=hearth issuing CA [0-9a-f]{8}, O=hearth" cat "$T/show"
t_out "ca show prints expiry dates" "not after +20[0-9]{2}-" cat "$T/show"
keyid=$(openssl pkey -in "$D/keys/manifest.key" -pubout -outform der | openssl dgst -sha256 -r | cut -d' ' -f1)
t_out "ca show prints the manifest key id (hex SHA-256 of its SPKI)" "keyid +$keyid" cat "$T/show"
t_eq "ca show prints no private key" 0 "$(grep -c 'PRIVATE' "$T/show")"

# The initial CRL: empty, signed by the issuing CA.
t "initial CRL verifies against the issuing CA" openssl crl -in "$C/crl.pem" -CAfile "$C/ca.pem" -noout
t_out "initial CRL lists nothing" "No Revoked Certificates" openssl crl -in "$C/crl.pem" -noout -text
