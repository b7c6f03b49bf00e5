# bench/loadgen must verify the endpoint, or a benchmark would measure something else. It verifies
# the endpoint certificate in full once and then accepts that same certificate byte for byte (as a
# device that pins it): a certificate from another CA fails every handshake, from the first on.
. "$(dirname "$0")/lib.sh"
D=$T/data
O=$T/out
loadgen_fleet g 3 || exit 1
start_hearth "$D" || { nok "hearth serve starts"; exit 1; }

t_out "eight full handshakes against hearth's CA succeed" "^result mode=handshakes ok=8 failed=0 " \
	"$LOADGEN" --port "$PORT" --certdir "$O" --ids "$T/ids" --handshakes 8 --concurrency 2 --timeout 60

# The same devices, but ca.pem is a CA the endpoint certificate does not come from.
mkdir -p "$T/other"
cp "$O"/* "$T/other/"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/other-ca.key" \
	-out "$T/other/ca.pem" -days 2 -subj "/CN=not hearth" >/dev/null 2>&1 || nok "make another CA"
t_fails "with another CA the load generator fails" sh -c '"$1" --port "$2" --certdir "$3" --ids "$4" \
	--handshakes 8 --concurrency 2 --timeout 60 >"$5" 2>&1' sh "$LOADGEN" "$PORT" "$T/other" "$T/ids" "$T/lg.out"
t_out "... every handshake, none accepted" "^result mode=handshakes ok=0 failed=8 " cat "$T/lg.out"
t_out "... saying why" "certificate verify failed|unable to get local issuer" cat "$T/lg.out"
t_out "hearth is still there" "^result mode=handshakes ok=2 failed=0 " \
	"$LOADGEN" --port "$PORT" --certdir "$O" --ids "$T/ids" --handshakes 2 --concurrency 1 --timeout 60
stop_hearth
