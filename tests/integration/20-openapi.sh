# docs/openapi.yaml describes exactly the routes the server registers (`hearth api routes`), with
# the scope each needs; and a route the server has is really served (not 404) under that scope.
. "$(dirname "$0")/lib.sh"
SPEC=docs/openapi.yaml
t "the OpenAPI file parses (python3-yaml)" python3 -c "import yaml, sys; yaml.safe_load(open('$SPEC'))"
"$HEARTH" api routes | sort > "$T/server"
python3 - "$SPEC" > "$T/spec.unsorted" <<'PY'
import sys, yaml
spec = yaml.safe_load(open(sys.argv[1]))
for path, item in spec["paths"].items():
    for method, op in item.items():
        if method in ("get", "put", "post", "delete", "patch"):
            # The server writes every path parameter as {id} or {name}, as the spec does.
            print(method.upper(), path, op.get("x-scope", "?"))
PY
sort "$T/spec.unsorted" > "$T/spec"
t "the server registers routes" test "$(wc -l < "$T/server")" -gt 10
t_eq "every route the server has is in the spec, with its scope" "" "$(comm -23 "$T/server" "$T/spec")"
t_eq "every route in the spec is one the server has" "" "$(comm -13 "$T/server" "$T/spec")"
t_eq "every operation documents its error answers or is public" "" "$(python3 - "$SPEC" <<'PY'
import sys, yaml
spec = yaml.safe_load(open(sys.argv[1]))
for path, item in spec["paths"].items():
    for method, op in item.items():
        if method in ("get", "put", "post", "delete", "patch") and "200" not in op["responses"] and "201" not in op["responses"]:
            print(method, path)
PY
)"

# Each registered route answers something other than 404 or 405 on a running server.
D=$T/data
"$HEARTH" init --data "$D" >/dev/null 2>&1 || { nok "init"; exit 1; }
TOKEN=$(new_token probe admin)
start_hearth "$D" || { nok "hearth serve starts"; exit 1; }
t "the REST API listens" test -n "$API_PORT"
while read -r method path scope; do
	p=$(printf '%s' "$path" | sed 's/{[a-z]*}/nosuch/g')
	out=$(api "$TOKEN" "$method" "$p" -H 'Content-Type: application/json' -d '{}')
	code=$(printf '%s\n' "$out" | tail -1)
	# A missing resource (404 from the handler) is a fine answer; a missing route is not.
	case "$code:$out" in
	*"no such resource"*|"HTTP 405:"*|"HTTP 501:"*|"HTTP 000:"*) nok "$method $path is served ($code)";;
	*) ok "$method $path is served ($code)";;
	esac
done < "$T/server"
t_out "an unknown route is 404 with a JSON error" '"code":"not_found"' api "$TOKEN" GET /api/v1/nothing
stop_hearth
