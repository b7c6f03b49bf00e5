#!/bin/bash
# Runs hearth's tests and prints one closing line: "N passed, N failed".
#   UNIT_BINS   Check unit test binaries to run (space separated)
#   HEARTH      the hearth binary the black-box tests drive
#   FUZZ_REPLAY_DIR  fuzz targets built with a replay main (their corpora are replayed)
#   ONLY        "unit" or "integration" to run one half
set -u
cd "$(dirname "$0")/.."
passed=0 failed=0

if [ "${ONLY:-unit}" = unit ] || [ -z "${ONLY:-}" ]; then
	for bin in ${UNIT_BINS:-}; do
		out=$("$bin" 2>&1); rc=$?
		line=$(printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks: ' | tail -1)
		checks=$(printf '%s' "$line" | sed -n 's/.*Checks: \([0-9]*\).*/\1/p')
		fails=$(printf '%s' "$line" | sed -n 's/.*Failures: \([0-9]*\), Errors: \([0-9]*\).*/\1 \2/p')
		if [ -z "$checks" ]; then
			echo "FAIL $bin: no Check summary (exit $rc)"
			printf '%s\n' "$out" | tail -20
			failed=$((failed + 1))
			continue
		fi
		f=$(( ${fails% *} + ${fails#* } ))
		passed=$((passed + checks - f))
		failed=$((failed + f))
		if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then
			[ "$f" -eq 0 ] && failed=$((failed + 1))
			printf '%s\n' "$out" | grep -vE '^Running suite' | grep -E ':[EF]:|Checks' | head -40
			echo "FAIL $bin (exit $rc)"
		else
			echo "ok   $(basename "$bin"): $checks checks"
		fi
	done
fi

if [ "${ONLY:-integration}" = integration ] || [ -z "${ONLY:-}" ]; then
	export HEARTH FUZZ_REPLAY_DIR
	for t in tests/integration/[0-9][0-9]-*.sh; do
		[ -e "$t" ] || continue
		echo "== $t"
		res=$(mktemp)
		RESULT_FILE="$res" timeout 600 bash "$t"; rc=$?
		read -r p f < "$res" || { p=0; f=1; }
		rm -f "$res"
		[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
		passed=$((passed + p))
		failed=$((failed + f))
	done
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
