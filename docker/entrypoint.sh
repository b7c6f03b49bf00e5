#!/bin/sh
# The image's entrypoint. `serve` gets one --name per entry of HEARTH_NAMES (commas or spaces
# between them) plus localhost and 127.0.0.1, which the health check connects to; hearth uses
# them only when it initialises an empty /data. Any other command is passed to hearth as it is:
#   docker compose run --rm hearth restore --data /data --from FILE
set -eu

if [ "$#" -eq 0 ]; then
	set -- serve --data /data
fi
if [ "$1" = serve ] && [ -n "${HEARTH_NAMES:-}" ]; then
	have_localhost=0
	have_loopback=0
	saved_ifs=$IFS
	IFS=', 	
'
	set -f
	for name in $HEARTH_NAMES; do
		[ -n "$name" ] || continue
		case $name in
		localhost) have_localhost=1 ;;
		127.0.0.1) have_loopback=1 ;;
		esac
		set -- "$@" --name "$name"
	done
	set +f
	IFS=$saved_ifs
	[ "$have_localhost" = 1 ] || set -- "$@" --name localhost
	[ "$have_loopback" = 1 ] || set -- "$@" --name 127.0.0.1
fi
# Not a hearth setting: hearth would warn that it names none.
unset HEARTH_NAMES
exec /usr/local/bin/hearth "$@"
