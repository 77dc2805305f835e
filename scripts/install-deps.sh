#!/usr/bin/env bash
# Installs the Debian packages that `make demo` or `make test` need, when they
# are missing. As root it runs apt-get; otherwise it names what to install.
#   scripts/install-deps.sh demo|test
set -euo pipefail

case "${1:-test}" in
  demo) wanted="redis-server:redis-server memcached:memcached" ;;
  test) wanted="redis-server:redis-server redis-sentinel:redis-sentinel memcached:memcached redis-cli:redis-tools redis-benchmark:redis-tools nutcracker:nutcracker" ;;
  bench) wanted="redis-server:redis-server memcached:memcached redis-benchmark:redis-tools nutcracker:nutcracker memcslap:libmemcached-tools" ;;
  *) echo "usage: $0 demo|test|bench" >&2; exit 2 ;;
esac

# nutcracker installs into /usr/sbin, which is not on every user's PATH.
export PATH="$PATH:/usr/sbin:/sbin"

missing=()
for pair in $wanted; do
  bin=${pair%%:*} pkg=${pair#*:}
  command -v "$bin" >/dev/null 2>&1 && continue
  [[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]}" >&2
  echo "install them as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packages start system services on the default ports; the demo and the
# tests use their own ports and never need them.
for svc in redis-server redis-sentinel memcached nutcracker; do
  if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" >/dev/null 2>&1 || true; fi
done
