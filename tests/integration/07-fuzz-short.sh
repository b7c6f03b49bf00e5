# A short libFuzzer run of every parser's fuzz target (the long runs are `make fuzz` by hand).
# Each starts from a copy of its seed corpus; any crash, leak or sanitizer report fails it.
. "$(dirname "$0")/lib.sh"
: "${FUZZ_DIR:?}"
secs=${FUZZ_SECONDS:-15}
found=0
for bin in "$FUZZ_DIR"/fuzz_*; do
	[ -x "$bin" ] || continue
	found=1
	name=$(basename "$bin")
	mkdir -p "$T/$name"
	cp tests/fuzz/corpus/"${name#fuzz_}"/* "$T/$name/"
	t "$name runs ${secs} s clean" "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$T/$name-" "$T/$name"
	runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$T/.out")
	t "$name executed inputs (${runs:-0})" test "${runs:-0}" -gt 1000
done
[ $found = 1 ] || nok "no fuzz targets in $FUZZ_DIR (make fuzz needs clang)"
