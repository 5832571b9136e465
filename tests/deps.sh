#!/usr/bin/env bash
# Installs the Debian packages named on the command line that are missing.
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v cargo >/dev/null || { echo "rsession: cargo is missing; install Rust (rustup) first" >&2; exit 1; }
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "rsession: missing packages: ${missing[*]}" >&2
  echo "rsession: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packaged servers start themselves; tests start their own on other
# ports, so stop the system ones to keep the machine quiet.
for svc in redis-server memcached postgresql mariadb-server nginx php8.2-fpm; do
  if [[ " ${missing[*]} " == *" $svc "* ]]; then
    service "${svc%-server}" stop >/dev/null 2>&1 || service "$svc" stop >/dev/null 2>&1 || true
  fi
done
