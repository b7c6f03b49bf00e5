#!/bin/sh
# Installs what hearth needs to build, test and benchmark (libssl-dev is for bench/loadgen only),
# from Debian bookworm's packages only.
# Idempotent: packages already present are left as they are. Run as root (or with sudo present).
set -eu
PKGS="build-essential pkg-config
      libmbedtls-dev libsqlite3-dev libjansson-dev libmicrohttpd-dev libgnutls28-dev libmosquitto-dev check
      libssl-dev
      openssl sqlite3 mosquitto mosquitto-clients curl python3 faketime clang libclang-rt-14-dev
      python3-numpy python3-sklearn python3-paho-mqtt python3-yaml wrk haproxy
      fiu-utils valgrind"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "install-deps: all packages present"
	exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "install-deps: run as root to install:$missing" >&2; exit 1; }
	SUDO=sudo
fi
echo "install-deps: installing$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
