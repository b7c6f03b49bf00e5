# The endpoint's TLS: every bad client certificate fails in the handshake, before any MQTT byte;
# only ECDHE-ECDSA AEAD suites on TLS 1.2+; session tickets resume, but not for a revoked device.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pki.sh"
D=$T/data
O=$T/out
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
make_bad_certs "$D" "$O" >/dev/null 2>&1 || { nok "make_bad_certs"; exit 1; }
start_hearth "$D" --handshake-threads 0 || { nok "hearth serve starts"; exit 1; }
t "handshakes run on the event loop here (the other tests use handshake threads)" grep -q "handshakes run on the event loop" "$HLOG"

t_raw "the good certificate connects (control)" "recv CONNACK" good connect:good-1 expect:CONNACK:0000
refused() { # DESC CERTNAME CLIENTID LOGREGEX
	local rc
	raw "$2" connect:"$3" expect:CONNACK >"$T/.out" 2>&1; rc=$?
	t_eq "$1: refused in the TLS handshake" 2 "$rc"
	t "$1: the server says why" grep -Eq "$4" "$HLOG"
}
refused "expired certificate" expired bad-expired "refused: .*expired"
refused "not yet valid certificate" notyet bad-notyet "refused: .*(future|not yet)"
refused "certificate from a foreign CA" foreign bad-foreign "bad-foreign.*refused: .*not correctly signed"
refused "certificate with the issuing CA's name and key id, another key's signature" impostor bad-impostor \
	"bad-impostor.*refused: .*not correctly signed"
refused "self-signed certificate" selfsigned bad-self "bad-self.*refused: .*not correctly signed"
refused "serverAuth-only certificate" serverauth bad-serverauth "bad-serverauth.*refused: .*([Uu]sage|purpose)"
refused "revoked certificate" revoked bad-revoked "device 'bad-revoked' refused: device or certificate revoked"
cp "$O/good.crt" "$O/nocert.crt"; cp "$O/good.key" "$O/nocert.key"
python3 "$(dirname "$0")/mqtt_raw.py" --host 127.0.0.1 --port "$PORT" --cafile "$O/ca.pem" --no-cert \
	connect:x expect:CONNACK >"$T/.out" 2>&1
t_eq "no client certificate: refused in the handshake" 2 "$?"
t "no client certificate: the server says why" grep -q "No client certification received" "$HLOG"

# What the endpoint offers, seen by openssl s_client.
sc() { timeout 10 openssl s_client -connect 127.0.0.1:"$PORT" -CAfile "$O/ca.pem" -verify_return_error \
	-cert "$O/good.crt" -key "$O/good.key" "$@" </dev/null 2>&1; }
t_out "TLS 1.2 with ECDHE-ECDSA-AES128-GCM-SHA256 works" "Cipher is ECDHE-ECDSA-AES128-GCM-SHA256" \
	sc -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256
t_out "the key exchange is on P-256 (not the costlier P-521 a client also offers)" "Server Temp Key: ECDH, prime256v1" \
	sc -tls1_2
t_out "the endpoint certificate verifies for 127.0.0.1" "Verify return code: 0 \(ok\)" sc -tls1_2 -verify_ip 127.0.0.1
t_fails "TLS 1.1 is refused" sc -tls1_1
t_fails "a CBC suite is refused" sc -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA256
t_fails "a non-ECDHE (static RSA) suite is refused" sc -tls1_2 -cipher AES128-GCM-SHA256
t_out "the endpoint sends its chain (leaf and issuing CA)" "1 s:.*hearth issuing CA" sc -tls1_2 -showcerts

# Session tickets: a reconnect resumes; a device revoked since its ticket is still refused.
sc -tls1_2 -sess_out "$T/sess" >/dev/null
t_out "a session ticket is issued" "TLS session ticket" openssl sess_id -in "$T/sess" -noout -text
t_out "a reconnect with the ticket resumes" "^Reused, TLSv1.2" sc -tls1_2 -sess_in "$T/sess"
"$HEARTH" device revoke --data "$D" --id good-1 >/dev/null 2>&1
sc -tls1_2 -sess_in "$T/sess" > "$T/resumed.out"
t "after revocation the resumed session is refused" wait_for 5 grep -q "good-1' refused on resumption" "$HLOG"

t "the server is still running after all of it" kill -0 "$HPID"
stop_hearth
t_fails "its log has no sanitizer report" grep -Eq 'Sanitizer|runtime error:' "$HLOG"
