# Every fuzz target replays its seed corpus (and any crashers found since) with the sanitizers of
# the build under test: a parser that regressed on a known input fails here.
. "$(dirname "$0")/lib.sh"
: "${FUZZ_REPLAY_DIR:?}"
for bin in "$FUZZ_REPLAY_DIR"/fuzz_*; do
	name=$(basename "$bin")
	corpus=tests/fuzz/corpus/${name#fuzz_}
	t "$name replays $corpus" "$bin" "$corpus"
	t_out "$name replayed at least one input" "replayed [1-9][0-9]* inputs" "$bin" "$corpus"
done
