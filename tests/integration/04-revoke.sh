# hearth device revoke and hearth ca crl: the CRL, checked with openssl.
. "$(dirname "$0")/lib.sh"
D=$T/data
O=$T/out
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
for id in keep gone; do
	"$HEARTH" device add --data "$D" --id $id --model cam --genkey --out "$O" >/dev/null 2>&1 || nok "add $id"
done
gone_serial=$(openssl x509 -in "$O/gone.crt" -noout -serial | cut -d= -f2)
keep_serial=$(openssl x509 -in "$O/keep.crt" -noout -serial | cut -d= -f2)
crl_number() { echo $(( $(openssl crl -in "$1" -noout -crlnumber | cut -d= -f2) )); }
n0=$(crl_number "$D/certs/crl.pem")

t "revoke succeeds" "$HEARTH" device revoke --data "$D" --id gone
C=$D/certs/crl.pem
t "the re-issued CRL verifies against the issuing CA (openssl crl)" openssl crl -in "$C" -CAfile "$O/ca.pem" -noout
t_out "the CRL is version 2" "Version 2" openssl crl -in "$C" -noout -text
t_out "the revoked serial is in the CRL" "Serial Number: $gone_serial" openssl crl -in "$C" -noout -text
t_eq "the other device's serial is not" 0 "$(openssl crl -in "$C" -noout -text | grep -c "$keep_serial")"
t "the CRL number grew" test "$(crl_number "$C")" -gt "$n0"
t_out "openssl verify -crl_check refuses the revoked certificate" "certificate revoked" \
	openssl verify -crl_check -CRLfile "$C" -CAfile "$O/ca.pem" "$O/gone.crt"
t "openssl verify -crl_check accepts the other device" openssl verify -crl_check -CRLfile "$C" -CAfile "$O/ca.pem" "$O/keep.crt"
t_out "device list shows the device revoked" "^gone +cam +revoked" "$HEARTH" device list --data "$D"
t_eq "the certificate is marked revoked in the store" revoked "$(sqlite3 "$D/hearth.db" "SELECT status FROM certificates WHERE device_id = 'gone'")"
t_eq "the revocation is audited" "device.revoke gone" "$(sqlite3 "$D/hearth.db" "SELECT action || ' ' || target FROM audit_log WHERE action = 'device.revoke'")"
t_out "revoking twice says it is already revoked" "already revoked" "$HEARTH" device revoke --data "$D" --id gone
t_out "revoking an unknown device names it" "no device 'ghost'" "$HEARTH" device revoke --data "$D" --id ghost
t_fails "revoking an unknown device fails" "$HEARTH" device revoke --data "$D" --id ghost

# hearth ca crl --out: a fresh CRL, same content, higher number.
n1=$(crl_number "$C")
t "ca crl writes a CRL" "$HEARTH" ca crl --data "$D" --out "$T/exported.pem"
t "the exported CRL verifies (openssl crl)" openssl crl -in "$T/exported.pem" -CAfile "$O/ca.pem" -noout
t_out "the exported CRL lists the revoked serial" "Serial Number: $gone_serial" openssl crl -in "$T/exported.pem" -noout -text
t "its CRL number is higher again" test "$(crl_number "$T/exported.pem")" -gt "$n1"
t_out "its nextUpdate is set" "Next Update: " openssl crl -in "$T/exported.pem" -noout -text
t_out "ca crl without --out is a usage error" "needs --out" "$HEARTH" ca crl --data "$D"
