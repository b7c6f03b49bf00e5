#!/bin/sh
# Stands in for the hearth binary (HEARTH=this script) so that every hearth process a test starts
# runs under valgrind's memcheck: one log per process, named by its PID, in $VALGRIND_LOGS.
#   VALGRIND_HEARTH    the real binary
#   VALGRIND_LOGS  where the logs go
#   VALGRIND_SUPP  suppression file(s), space separated (optional)
# Leaks and errors are not turned into an exit status here (a test would then see a different
# failure than it checks for); tests/valgrind/summary.sh reads the logs afterwards.
: "${VALGRIND_HEARTH:?VALGRIND_HEARTH must name the real hearth binary}"
: "${VALGRIND_LOGS:?VALGRIND_LOGS must name a directory}"
supp=""
for f in ${VALGRIND_SUPP:-}; do supp="$supp --suppressions=$f"; done
# shellcheck disable=SC2086
exec valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite \
	--errors-for-leak-kinds=definite --num-callers=30 --track-fds=no \
	--log-file="$VALGRIND_LOGS/hearth.%p.log" $supp "$VALGRIND_HEARTH" "$@"
