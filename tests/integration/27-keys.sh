# Signing-key rotation: each keys manifest is signed by the old key and the new one; a device that
# was offline across three rotations walks them version by version (fetched over HTTPS with its
# certificate) with nothing but the key it got at enrollment and the openssl CLI, and then trusts
# exactly the current key. Skipping a version does not work.
. "$(dirname "$0")/lib.sh"
D=$T/data
O=$T/out
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
"$HEARTH" device add --data "$D" --id k1 --model m --genkey --out "$O" >/dev/null 2>&1 || nok "add k1"
openssl pkey -in "$D/keys/manifest.key" -pubout > "$T/k0.pem"
K0=$(openssl pkey -pubin -in "$T/k0.pem" -outform der | openssl dgst -sha256 | awk '{print $NF}')
t_out "keys show names the signing key" "keyid $K0" "$HEARTH" keys show --data "$D"
start_hearth "$D" || { nok "hearth serve starts"; exit 1; }
for i in 1 2 3; do
	t_out "rotation $i: a keys manifest signed by the old and the new key" "keys manifest version $i announced" \
		"$HEARTH" keys rotate --data "$D"
done
t "the current key is 0600" test "$(stat -c %a "$D/keys/manifest.key")" = 600
t_eq "the retired keys are kept aside, 0600" "600 600 600" "$(stat -c %a "$D"/keys/manifest-retired-*.key | tr '\n' ' ' | sed 's/ $//')"
KNOW=$(openssl pkey -in "$D/keys/manifest.key" -pubout -outform der | openssl dgst -sha256 | awk '{print $NF}')
t "the signing key changed" test "$KNOW" != "$K0"
fetch() { api "" GET "/api/v1/device/manifests/keys?version=$1" --cert "$O/k1.crt" --key "$O/k1.key" | head -n -1 > "$T/keys.$1"; }
for v in 1 2 3; do fetch $v; done
t_out "the device can fetch each version over HTTPS (mTLS)" '"payloadType"' cat "$T/keys.2"
t_out "an unknown version: 404" "HTTP 404" api "" GET "/api/v1/device/manifests/keys?version=9" --cert "$O/k1.crt" --key "$O/k1.key"
t_out "a bad version: 400" "HTTP 400" api "" GET "/api/v1/device/manifests/keys?version=-1" --cert "$O/k1.crt" --key "$O/k1.key"
mkdir -p "$T/walk"
walk() { python3 "$(dirname "$0")/keywalk.py" --trust "$T/k0.pem" --work "$T/walk" "$@"; }
t_out "the offline device walks v1, v2, v3 from the enrollment key (openssl verifies)" "^trusted $KNOW$" \
	walk "$T/keys.1" "$T/keys.2" "$T/keys.3"
t_out "skipping a version fails" "refused .*keys.3: no good signature by a trusted key" walk "$T/keys.1" "$T/keys.3"
t_out "replaying an old one fails" "refused .*keys.1: " walk "$T/keys.1" "$T/keys.2" "$T/keys.1"
# What is signed now verifies with the new key only.
"$HEARTH" manifest issue --data "$D" --device k1 --type firmware >/dev/null || nok "issue"
api "" GET /api/v1/device/manifests/firmware --cert "$O/k1.crt" --key "$O/k1.key" | head -n -1 > "$T/fw"
t_eq "a new manifest carries one signature, by the new key" "$KNOW" \
	"$(python3 -c 'import json,sys; print(" ".join(s["keyid"] for s in json.load(open(sys.argv[1]))["signatures"]))' "$T/fw")"
t "it verifies against the data directory's (new) key" sh -c "'$HEARTH' manifest verify --data '$D' --envelope '$T/fw' >/dev/null 2>&1"
t_out "enrollment now hands out the new key" "keyid $KNOW" "$HEARTH" keys show --data "$D"
stop_hearth
t_fails "no sanitizer report" grep -Eq 'Sanitizer|runtime error:' "$T"/serve.*.log
