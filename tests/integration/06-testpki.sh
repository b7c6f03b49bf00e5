# The test PKI (pki.sh make_bad_certs) itself: each certificate the endpoint must refuse is wrong in
# exactly the one way it is named for, as openssl sees it, and its device id is a known one.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pki.sh"
D=$T/data
O=$T/bad
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
t "make_bad_certs succeeds" make_bad_certs "$D" "$O"
CA=$D/certs/ca.pem
CRL=$D/certs/crl.pem
verdict() { pki_verdict "$O/$1.crt" "$D" "${@:2}"; }

# The openssl verdicts, each for the right reason.
t_eq "expired: certificate has expired" "certificate has expired" "$(verdict expired)"
t_eq "notyet: certificate is not yet valid" "certificate is not yet valid" "$(verdict notyet)"
t_eq "foreign: unable to get local issuer certificate" "unable to get local issuer certificate" "$(verdict foreign)"
t_eq "impostor: certificate signature failure" "certificate signature failure" "$(verdict impostor)"
t_eq "selfsigned: self-signed certificate" "self-signed certificate" "$(verdict selfsigned)"
t_eq "serverauth: passes a plain verify" OK "$(verdict serverauth)"
t_eq "serverauth: unsuitable for TLS client use" "unsuitable certificate purpose" "$(verdict serverauth -purpose sslclient)"
t_eq "revoked: a plain verify passes" OK "$(verdict revoked -purpose sslclient)"
t_eq "revoked: certificate revoked, with hearth's CRL" "certificate revoked" "$(verdict revoked -crl_check -CRLfile "$CRL")"
t_eq "good: verifies for TLS client use, with the CRL" OK "$(verdict good -purpose sslclient -crl_check -CRLfile "$CRL")"

# Nothing but the property under test is wrong: at a time inside its validity the expired and
# not-yet-valid ones verify, and the foreign one verifies against its own root.
nb() { date -d "$(openssl x509 -in "$O/$1.crt" -noout -startdate | cut -d= -f2)" +%s; }
na() { date -d "$(openssl x509 -in "$O/$1.crt" -noout -enddate | cut -d= -f2)" +%s; }
now=$(date +%s)
t "expired: wholly in the past" test "$(na expired)" -lt "$now"
t "notyet: wholly in the future" test "$(nb notyet)" -gt "$now"
t_eq "expired: valid for client use at a time inside its life" OK \
	"$(verdict expired -purpose sslclient -attime $(( ($(nb expired) + $(na expired)) / 2 )))"
t_eq "notyet: valid for client use at a time inside its life" OK \
	"$(verdict notyet -purpose sslclient -attime $(( $(nb notyet) + 3600 )))"
t "foreign: verifies for client use against its own throwaway root" \
	openssl verify -purpose sslclient -CAfile "$O/foreign-ca.crt" "$O/foreign.crt"
t_eq "foreign: the throwaway root is P-256" "ASN1 OID: prime256v1" \
	"$(openssl x509 -in "$O/foreign-ca.crt" -noout -text | grep -o 'ASN1 OID: .*')"
t_eq "foreign: issued by the throwaway root, not by hearth's CA" "issuer=CN = throwaway foreign root" \
	"$(openssl x509 -in "$O/foreign.crt" -noout -issuer)"
t "impostor: verifies for client use against the impostor CA" \
	openssl verify -purpose sslclient -partial_chain -CAfile "$O/impostor-ca.crt" "$O/impostor.crt"
t_eq "impostor: its issuer name is the issuing CA's subject" \
	"$(openssl x509 -in "$D/certs/issuing.crt" -noout -subject | cut -d= -f2-)" \
	"$(openssl x509 -in "$O/impostor.crt" -noout -issuer | cut -d= -f2-)"
t_eq "impostor: its AKI is the issuing CA's key identifier" \
	"$(openssl x509 -in "$D/certs/issuing.crt" -noout -ext subjectKeyIdentifier | tail -n 1)" \
	"$(openssl x509 -in "$O/impostor.crt" -noout -ext authorityKeyIdentifier | tail -n 1)"
t_fails "impostor: the impostor CA's key is not the issuing CA's" sh -c \
	"[ \"\$(openssl x509 -in '$O/impostor-ca.crt' -noout -pubkey)\" = \"\$(openssl x509 -in '$D/certs/issuing.crt' -noout -pubkey)\" ]"
t_eq "selfsigned: issuer is its subject" "$(openssl x509 -in "$O/selfsigned.crt" -noout -subject | cut -d= -f2-)" \
	"$(openssl x509 -in "$O/selfsigned.crt" -noout -issuer | cut -d= -f2-)"
t "selfsigned: its signature verifies under its own key" \
	openssl verify -partial_chain -CAfile "$O/selfsigned.crt" "$O/selfsigned.crt"

# Every certificate: hearth's device profile (but the property under test), its own key, a known id.
ext() { openssl x509 -in "$O/$2.crt" -noout -ext "$1" 2>/dev/null | tr -s ' \n' ' ' | sed 's/ $//'; }
status() { sqlite3 "$D/hearth.db" "SELECT status FROM devices WHERE id = '$1'"; }
for pair in expired:bad-expired notyet:bad-notyet foreign:bad-foreign impostor:bad-impostor selfsigned:bad-self \
	serverauth:bad-serverauth revoked:bad-revoked good:good-1; do
	n=${pair%%:*} id=${pair#*:}
	t_eq "$n: subject is CN = $id" "subject=CN = $id" "$(openssl x509 -in "$O/$n.crt" -noout -subject)"
	t "$n: $n.key matches the certificate" sh -c \
		"[ \"\$(openssl x509 -in '$O/$n.crt' -noout -pubkey)\" = \"\$(openssl pkey -in '$O/$n.key' -pubout)\" ]"
	t_eq "$n: the key is P-256" "ASN1 OID: prime256v1" "$(openssl pkey -in "$O/$n.key" -noout -text | grep -o 'ASN1 OID: .*')"
	t_eq "$n: the key file is 0600" 600 "$(mode_of "$O/$n.key")"
	t_eq "$n: signed with ecdsa-with-SHA256" "Signature Algorithm: ecdsa-with-SHA256" \
		"$(openssl x509 -in "$O/$n.crt" -noout -text | grep -m1 -o 'Signature Algorithm: .*')"
	t_eq "$n: not a CA" "X509v3 Basic Constraints: CA:FALSE" "$(ext basicConstraints "$n")"
	t_eq "$n: key usage digitalSignature only, critical" "X509v3 Key Usage: critical Digital Signature" "$(ext keyUsage "$n")"
	if [ "$n" = serverauth ]; then
		t_eq "$n: extended key usage serverAuth only" "X509v3 Extended Key Usage: TLS Web Server Authentication" "$(ext extendedKeyUsage "$n")"
	else
		t_eq "$n: extended key usage clientAuth only" "X509v3 Extended Key Usage: TLS Web Client Authentication" "$(ext extendedKeyUsage "$n")"
	fi
	t_eq "$n: no SANs" "" "$(ext subjectAltName "$n")"
	if [ "$n" = revoked ]; then
		t_eq "$n: device $id is registered and revoked" revoked "$(status "$id")"
	else
		t_eq "$n: device $id is registered and active" active "$(status "$id")"
	fi
done
# The crafted certificates carry the registered device's key: the one hearth issued to that id.
serial_in_db() { sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM certificates WHERE serial = '$(openssl x509 -in "$O/$1.crt" -noout -serial | cut -d= -f2)'"; }
t_eq "good and revoked are the certificates hearth issued" "1 1" "$(serial_in_db good) $(serial_in_db revoked)"
t_eq "the crafted ones are not in hearth's store" "0 0 0 0 0 0" \
	"$(serial_in_db expired) $(serial_in_db notyet) $(serial_in_db foreign) $(serial_in_db impostor) $(serial_in_db selfsigned) $(serial_in_db serverauth)"
t_eq "ca.pem is hearth's" "$(cat "$CA")" "$(cat "$O/ca.pem")"
t_eq "OUT holds nothing else" "ca.pem expired.crt expired.key foreign-ca.crt foreign.crt foreign.key good.crt good.key impostor-ca.crt impostor.crt impostor.key notyet.crt notyet.key revoked.crt revoked.key selfsigned.crt selfsigned.key serverauth.crt serverauth.key" \
	"$(cd "$O" && ls | tr '\n' ' ' | sed 's/ $//')"
t_out "make_bad_certs on a directory that is not a data directory says so" "not an initialised" \
	make_bad_certs "$T/nowhere" "$T/bad2"
