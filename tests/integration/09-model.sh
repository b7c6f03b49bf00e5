# hearth model set|show|list: minimization policies are validated, stored, audited.
. "$(dirname "$0")/lib.sh"
D=$T/data
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }

for f in schema/policies/*.json; do
	t "the shipped example $(basename "$f") is a valid policy" "$HEARTH" model set --data "$D" --model "ex-$(basename "$f" .json)" --policy "$f"
done
t_out "model set says what it kept" "model heater: policy set \([0-9]+ fields? kept\)" \
	"$HEARTH" model set --data "$D" --model heater --policy schema/policies/smart-heater.json
t_eq "model show prints the stored policy" "$(cat schema/policies/smart-heater.json)" "$("$HEARTH" model show --data "$D" --model heater)"
t_out "model list shows it with its policy" "^heater +yes +0" "$HEARTH" model list --data "$D"
t_eq "the change is audited" 1 "$(sqlite3 "$D/hearth.db" "SELECT COUNT(*) FROM audit_log WHERE action = 'model.set' AND target = 'heater'")"

bad() { # DESC REGEX JSON
	printf '%s' "$3" > "$T/p.json"
	t_out "$1: refused, naming the problem" "$2" "$HEARTH" model set --data "$D" --model badm --policy "$T/p.json"
	t_fails "$1: exit status says so" "$HEARTH" model set --data "$D" --model badm --policy "$T/p.json"
}
bad "not JSON" "p.json: " 'policy = 1'
bad "an unknown top-level key" "colour" '{"policy": 1, "colour": "red", "fields": {}}'
bad "an unknown field key" "fields.temp" '{"policy": 1, "fields": {"temp": {"type": "number", "retention_days": 30, "aggregate": "mean", "bucket_s": 900, "smooth": 1}}}'
bad "a negative rounding step" "fields.temp.round" '{"policy": 1, "fields": {"temp": {"type": "number", "round": -1, "aggregate": "mean", "bucket_s": 900, "retention_days": 30}}}'
bad "a sensitive field without sensitive_ok" "fields.co2_ppm.*air" '{"policy": 1, "fields": {"co2_ppm": {"type": "number", "aggregate": "mean", "bucket_s": 3600, "retention_days": 30}}}'
bad "a sensitive field aggregated too finely" "fields.Motion" '{"policy": 1, "fields": {"Motion": {"type": "number", "aggregate": "count", "bucket_s": 900, "sensitive_ok": true, "retention_days": 30}}}'
bad "a duplicate key" "" '{"policy": 1, "fields": {}, "fields": {}}'
t_eq "no refused policy reached the store" "" "$(sqlite3 "$D/hearth.db" "SELECT name FROM models WHERE name = 'badm'")"

printf '%s' '{"policy": 1, "fields": {"co2_ppm": {"type": "number", "aggregate": "mean", "bucket_s": 3600, "sensitive_ok": true, "retention_days": 30}}}' > "$T/ok.json"
t_out "sensitive_ok with an hourly bucket is accepted, with a warning" "co2_ppm \(air quality\): mean per 3600 s" \
	"$HEARTH" model set --data "$D" --model air --policy "$T/ok.json"
head -c 70000 /dev/zero | tr '\0' ' ' > "$T/big.json"
t_out "an oversize policy file is refused" "larger than a policy may be" "$HEARTH" model set --data "$D" --model big --policy "$T/big.json"
t_out "an unknown model is named" "no model 'ghost'" "$HEARTH" model show --data "$D" --model ghost
