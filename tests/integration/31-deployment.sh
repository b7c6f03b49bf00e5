# The vendor-cloud deployment notes hold up: the HAProxy example is valid HAProxy configuration
# (haproxy -c), and the commands docs/deployment.md names exist.
. "$(dirname "$0")/lib.sh"
CFG=docs/deployment/haproxy.cfg
t "the example config exists" test -s "$CFG"
if command -v haproxy >/dev/null 2>&1; then
	# The health checks verify against a CA file: point them at a real one.
	"$HEARTH" init --data "$T/data" >/dev/null 2>&1 || nok "init"
	sed "s|/etc/hearth/ca.pem|$T/data/certs/ca.pem|g" "$CFG" > "$T/haproxy.cfg"
	t_out "haproxy -c accepts it" "Configuration file is valid" haproxy -c -f "$T/haproxy.cfg"
	sed 's/^\tmode tcp$/\tmode tcpx/' "$T/haproxy.cfg" > "$T/broken.cfg"
	t_fails "and the check can fail (a broken copy is refused)" haproxy -c -f "$T/broken.cfg"
	t_out "TLS is passed through, never terminated" "^0$" sh -c "grep -cE '^\s*bind .* ssl' '$CFG' || true"
else
	nok "haproxy is not installed (scripts/install-deps.sh installs it)"
fi
for cmd in "backup" "restore" "token add" "ca show" "pins rotate" "keys rotate" "rollout create"; do
	t "docs/deployment.md names 'hearth $cmd', which exists" sh -c "grep -q 'hearth $cmd' docs/deployment.md && '$HEARTH' $cmd --help >/dev/null 2>&1"
done
