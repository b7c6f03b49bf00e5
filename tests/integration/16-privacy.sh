# The presence-inference check (tests/privacy/check.sh): 10 simulated households x 7 days x 2
# heaters publish through the endpoint; what hearth stored must add at most 0.03 balanced accuracy
# over the clock alone. About 75 s.
. "$(dirname "$0")/../privacy/check.sh"
