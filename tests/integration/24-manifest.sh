# Signed manifests: `hearth manifest sign` makes a DSSE envelope that the openssl command line alone
# verifies (the PAE built here with printf, the key taken from the data directory), with the keyid
# openssl computes; `hearth manifest verify` agrees with openssl on good and tampered envelopes; and
# bodies without the fields every manifest carries are refused before anything is signed.
. "$(dirname "$0")/lib.sh"
D=$T/data
TYPE=application/vnd.hearth.manifest+json
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }

EXPIRES=$(( $(date +%s) + 86400 ))
printf '{"type": "pins", "device": "h1", "version": 1, "expires": %d, "pins": ["sha256/x"]}\n' "$EXPIRES" > "$T/body.json"

# json_get FILE EXPR: a python expression over the envelope e, printed (strings as they are).
json_get() { python3 -c 'import json, sys; e = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
# b64_field FILE EXPR OUT: the base64 string at EXPR, strictly decoded into OUT.
b64_field() {
	python3 -c 'import base64, json, sys
e = json.load(open(sys.argv[1]))
open(sys.argv[3], "wb").write(base64.b64decode(eval(sys.argv[2]), validate=True))' "$1" "$2" "$3"
}
# pae PAYLOAD OUT: DSSEv1 SP len(type) SP type SP len(payload) SP payload
pae() {
	printf 'DSSEv1 %d %s %d ' "$(printf '%s' "$TYPE" | wc -c)" "$TYPE" "$(wc -c < "$1")" > "$2"
	cat "$1" >> "$2"
}
# openssl_verify ENVELOPE: the envelope's first signature checked by openssl alone.
openssl_verify() {
	b64_field "$1" 'e["payload"]' "$T/payload.bin" && b64_field "$1" 'e["signatures"][0]["sig"]' "$T/sig.der" &&
		pae "$T/payload.bin" "$T/pae.bin" &&
		openssl dgst -sha256 -verify "$T/pub.pem" -signature "$T/sig.der" "$T/pae.bin"
}

# --- sign, then verify with openssl alone -------------------------------------------------------
t_out "manifest sign writes an envelope" "manifest signed by keyid [0-9a-f]{64}, written to" \
	"$HEARTH" manifest sign --data "$D" --body "$T/body.json" --out "$T/env.json"
t_eq "it is a DSSE envelope of the manifest type" "$TYPE" "$(json_get "$T/env.json" 'e["payloadType"]')"
t_eq "with exactly payloadType, payload and signatures" "['payload', 'payloadType', 'signatures']" \
	"$(json_get "$T/env.json" 'sorted(e)')"
t_eq "and one signature" 1 "$(json_get "$T/env.json" 'len(e["signatures"])')"
t "the payload is base64 of the body file, byte for byte" \
	sh -c "python3 -c 'import base64, json, sys; sys.stdout.buffer.write(base64.b64decode(json.load(open(\"$T/env.json\"))[\"payload\"], validate=True))' | cmp - '$T/body.json'"
openssl pkey -in "$D/keys/manifest.key" -pubout -out "$T/pub.pem" 2>/dev/null
t_out "openssl verifies the signature over the PAE (printf, wc -c)" "^Verified OK" openssl_verify "$T/env.json"
want="DSSEv1 36 $TYPE $(wc -c < "$T/body.json") "
t_eq "the PAE openssl checked starts as DSSE says" "$want" "$(head -c ${#want} "$T/pae.bin")"
KEYID=$(openssl pkey -in "$D/keys/manifest.key" -pubout -outform der 2>/dev/null | openssl dgst -sha256 | awk '{print $NF}')
t_eq "the keyid is openssl's SHA-256 of the DER public key" "$KEYID" "$(json_get "$T/env.json" 'e["signatures"][0]["keyid"]')"
t_out "... and the one hearth ca show prints" "keyid +$KEYID" "$HEARTH" ca show --data "$D"
t "without --out the envelope goes to stdout" sh -c "'$HEARTH' manifest sign --data '$D' --body '$T/body.json' > '$T/env2.json'"
t_out "... and openssl verifies that one too" "^Verified OK" openssl_verify "$T/env2.json"

# --- hearth manifest verify --------------------------------------------------------------------------
t "manifest verify accepts it" "$HEARTH" manifest verify --data "$D" --envelope "$T/env.json"
t "... and prints the body exactly" sh -c "'$HEARTH' manifest verify --data '$D' --envelope '$T/env.json' 2>/dev/null | cmp - '$T/body.json'"
t_out "... naming the key that signed" "good signature by keyid $KEYID" \
	"$HEARTH" manifest verify --data "$D" --envelope "$T/env.json"
t_fails "a threshold of 2 is not met by one key" \
	"$HEARTH" manifest verify --data "$D" --envelope "$T/env.json" --threshold 2
t_out "... and says so" "1 distinct trusted key signed; 2 needed" \
	"$HEARTH" manifest verify --data "$D" --envelope "$T/env.json" --threshold 2

# A tampered payload (the version raised, the signature kept): both hearth and openssl refuse it.
python3 -c 'import base64, json, sys
e = json.load(open(sys.argv[1]))
body = base64.b64decode(e["payload"]).replace(b"\"version\": 1", b"\"version\": 9")
assert b"\"version\": 9" in body
e["payload"] = base64.b64encode(body).decode()
json.dump(e, open(sys.argv[2], "w"))' "$T/env.json" "$T/tampered.json"
t_fails "manifest verify refuses a tampered payload" "$HEARTH" manifest verify --data "$D" --envelope "$T/tampered.json"
t_out "... because the signature does not verify" "refused: signature 0 by trusted key .* does not verify" \
	"$HEARTH" manifest verify --data "$D" --envelope "$T/tampered.json"
t_fails "openssl refuses it too" openssl_verify "$T/tampered.json"
t_out "... with Verification failure" "Verification [Ff]ailure" openssl_verify "$T/tampered.json"
t_eq "... and prints nothing of the body" "" "$("$HEARTH" manifest verify --data "$D" --envelope "$T/tampered.json" 2>/dev/null)"

# Other refusals of envelopes
python3 -c 'import json, sys
e = json.load(open(sys.argv[1])); e["payloadType"] = "application/json"; json.dump(e, open(sys.argv[2], "w"))' \
	"$T/env.json" "$T/wrongtype.json"
t_out "another payloadType is refused" "payloadType .* is not ${TYPE/+/[+]}" \
	"$HEARTH" manifest verify --data "$D" --envelope "$T/wrongtype.json"
{ cat "$T/env.json"; echo 'x'; } > "$T/trailing.json"
t_out "trailing bytes are refused" "trailing bytes" "$HEARTH" manifest verify --data "$D" --envelope "$T/trailing.json"
head -c 100 "$T/env.json" > "$T/truncated.json"
t_fails "a truncated envelope is refused" "$HEARTH" manifest verify --data "$D" --envelope "$T/truncated.json"
"$HEARTH" init --data "$T/other" >/dev/null 2>&1 || nok "init another data directory"
t_out "another data directory's key does not count" "0 distinct trusted keys signed; 1 needed" \
	"$HEARTH" manifest verify --data "$T/other" --envelope "$T/env.json"
t_fails "--threshold 0 is a usage error" "$HEARTH" manifest verify --data "$D" --envelope "$T/env.json" --threshold 0

# --- bodies manifest sign refuses ----------------------------------------------------------------
refuse_body() {
	local desc=$1 body=$2 re=$3
	printf '%s' "$body" > "$T/bad.json"
	rm -f "$T/bad-env.json"
	t_fails "sign refuses $desc" "$HEARTH" manifest sign --data "$D" --body "$T/bad.json" --out "$T/bad-env.json"
	t_out "... saying why" "$re" "$HEARTH" manifest sign --data "$D" --body "$T/bad.json" --out "$T/bad-env.json"
	t "... and writes nothing" test ! -e "$T/bad-env.json"
}
E=$EXPIRES
refuse_body "an array" '[{"type":"pins","device":"h1","version":1,"expires":1}]' "must be a JSON object"
refuse_body "a string" '"pins"' "must be a JSON object"
refuse_body "a number" '42' "must be a JSON object"
refuse_body "text that is not JSON" '{"type": "pins",' "not JSON"
refuse_body "trailing bytes after the object" "{\"type\":\"pins\",\"device\":\"h1\",\"version\":1,\"expires\":$E} x" "not JSON"
refuse_body "duplicate keys" "{\"type\":\"pins\",\"device\":\"h1\",\"version\":1,\"version\":2,\"expires\":$E}" "not JSON.*duplicate"
refuse_body "a missing type" "{\"device\":\"h1\",\"version\":1,\"expires\":$E}" '"type" must be'
refuse_body "an unknown type" "{\"type\":\"other\",\"device\":\"h1\",\"version\":1,\"expires\":$E}" '"type" must be'
refuse_body "a missing device" "{\"type\":\"keys\",\"version\":1,\"expires\":$E}" '"device" must be'
refuse_body "a device that is not a string" "{\"type\":\"keys\",\"device\":7,\"version\":1,\"expires\":$E}" '"device" must be'
refuse_body "a missing version" "{\"type\":\"firmware\",\"device\":\"h1\",\"expires\":$E}" '"version" must be'
refuse_body "version 0" "{\"type\":\"firmware\",\"device\":\"h1\",\"version\":0,\"expires\":$E}" '"version" must be'
refuse_body "a version that is a string" "{\"type\":\"firmware\",\"device\":\"h1\",\"version\":\"1\",\"expires\":$E}" '"version" must be'
refuse_body "a fractional version" "{\"type\":\"firmware\",\"device\":\"h1\",\"version\":1.5,\"expires\":$E}" '"version" must be'
refuse_body "a missing expires" '{"type":"pins","device":"h1","version":1}' '"expires" must be'
refuse_body "an expires that is not a number" '{"type":"pins","device":"h1","version":1,"expires":"soon"}' '"expires" must be'
python3 -c 'import sys; sys.stdout.write("{\"type\":\"pins\",\"device\":\"h1\",\"version\":1,\"expires\":1,\"pad\":\"" + "a" * 131072 + "\"}")' > "$T/big.json"
t_out "sign refuses a body over 128 KiB" "over 131072 bytes" "$HEARTH" manifest sign --data "$D" --body "$T/big.json"
for ty in pins firmware keys; do
	printf '{"type":"%s","device":"model:heater","version":3,"expires":%d}' "$ty" "$E" > "$T/$ty.json"
	t "sign accepts type $ty" "$HEARTH" manifest sign --data "$D" --body "$T/$ty.json" --out "$T/$ty.env"
	t_out "... and openssl verifies it" "^Verified OK" openssl_verify "$T/$ty.env"
done
t_out "manifest without a subcommand is a usage error" "needs a subcommand" "$HEARTH" manifest
t_out "hearth --help lists manifest" "manifest issue[|]upload[|]sign[|]verify" "$HEARTH" --help
