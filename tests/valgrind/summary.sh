#!/bin/bash
# Sums up the memcheck logs of one `make valgrind` run: definitely-lost bytes and errors per
# process, then in total. Exit 1 if any process lost memory definitely or had an error.
# A log without a closing ERROR SUMMARY belongs to a process that was killed (kill -9 in the
# crash tests) or is still running: it is listed, and it counts as neither.
set -u
dir=${1:?usage: summary.sh LOGDIR}
logs=0 complete=0 killed=0 lost_total=0 err_total=0 bad=""
for f in "$dir"/hearth.*.log; do
	[ -e "$f" ] || continue
	logs=$((logs + 1))
	if ! grep -q 'ERROR SUMMARY:' "$f"; then
		killed=$((killed + 1))
		continue
	fi
	complete=$((complete + 1))
	lost=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$f" | tail -1 | tr -d ,)
	errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$f" | tail -1 | tr -d ,)
	lost=${lost:-0} errs=${errs:-0}
	lost_total=$((lost_total + lost))
	err_total=$((err_total + errs))
	if [ "$lost" -gt 0 ] || [ "$errs" -gt 0 ]; then
		bad="$bad $f"
		cmd=$(sed -n 's/^==[0-9]*== Command: //p' "$f" | head -1)
		echo "  $(basename "$f"): $lost bytes definitely lost, $errs errors: $cmd"
	fi
done
for f in $bad; do
	echo "---- $f (its first reports)"
	awk '/^==[0-9]+== ([0-9,]+ .*definitely lost in loss record|Invalid |Conditional jump|Use of uninitialised|Syscall param|Mismatched|Source and destination overlap)/ {p=1; n++}
	     p && /^==[0-9]+== $/ {p=0; if (n == 3) exit} p' "$f" | head -60
done
echo "valgrind: $logs hearth processes ($complete ran to exit, $killed killed or unfinished):" \
	"$lost_total bytes definitely lost, $err_total errors (definite leaks included)"
[ "$lost_total" -eq 0 ] && [ "$err_total" -eq 0 ]
