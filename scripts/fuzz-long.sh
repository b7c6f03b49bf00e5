#!/bin/sh
# Long libFuzzer runs (`make fuzz-long`): each named target for FUZZ_SECONDS (3600) from its seed
# corpus plus whatever an earlier long run kept, at most FUZZ_JOBS (2) targets at a time.
# Everything goes to $FUZZ_OUT (build/fuzz-long): <name>/corpus grows across runs, <name>.log is the
# libFuzzer output, <name>-crash-* any input that failed. A summary line per target is printed at
# the end: executions, coverage, corpus size, and whether anything was found.
#   usage: scripts/fuzz-long.sh [name ...]      (names without fuzz_; default: all targets)
# Afterwards the inputs that reach new code go into the seed corpus (make test replays it):
#   build/fuzz/fuzz_NAME -merge=1 -use_counters=0 tests/fuzz/corpus/NAME build/fuzz-long/NAME/corpus
set -u
dir=${FUZZ_DIR:-build/fuzz}
out=${FUZZ_OUT:-build/fuzz-long}
secs=${FUZZ_SECONDS:-3600}
jobs=${FUZZ_JOBS:-2}
case $secs in ''|*[!0-9]*) echo "fuzz-long: FUZZ_SECONDS must be a number" >&2; exit 2 ;; esac
case $jobs in ''|*[!0-9]*|0) echo "fuzz-long: FUZZ_JOBS must be a positive number" >&2; exit 2 ;; esac

if [ $# -eq 0 ]; then
	for bin in "$dir"/fuzz_*; do [ -x "$bin" ] && set -- "$@" "${bin##*/fuzz_}"; done
fi
[ $# -gt 0 ] || { echo "fuzz-long: no fuzz targets in $dir (make fuzz needs clang)" >&2; exit 2; }
for name in "$@"; do
	[ -x "$dir/fuzz_$name" ] || { echo "fuzz-long: no target $dir/fuzz_$name" >&2; exit 2; }
done
mkdir -p "$out"
names=$*

run_one() {
	name=$1
	mkdir -p "$out/$name/corpus"
	cp -n tests/fuzz/corpus/"$name"/* "$out/$name/corpus/" 2>/dev/null
	"$dir/fuzz_$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$out/$name-" "$out/$name/corpus" > "$out/$name.log" 2>&1
	echo $? > "$out/$name.rc"
}

# A simple pool: start up to $jobs, wait for the oldest before starting the next.
pids=""
for name in "$@"; do
	run_one "$name" &
	pids="$pids $!"
	set -- $pids
	if [ $# -ge "$jobs" ]; then
		wait "$1"
		shift
		pids="$*"
	fi
done
for p in $pids; do wait "$p"; done

# This run's targets only: an earlier run's logs in $out are not reported again.
status=0
for name in $names; do
	log=$out/$name.log
	rc=$(cat "$out/$name.rc" 2>/dev/null || echo "?")
	runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log")
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
	files=$(ls "$out/$name/corpus" | wc -l)
	found=$(ls "$out/$name"-crash-* "$out/$name"-leak-* "$out/$name"-timeout-* "$out/$name"-oom-* 2>/dev/null | wc -l)
	echo "fuzz_$name: rc $rc, ${runs:-?} runs, ${cov:-cov: ?}, corpus $files files, $found findings"
	[ "$rc" = 0 ] && [ "$found" = 0 ] || status=1
done
exit $status
