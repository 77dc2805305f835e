#!/usr/bin/env bash
# make fresh-check: proves the README's two commands, `make demo` and
# `make test`, on a machine that never ran them. A throw-away Debian root
# made with debootstrap holds only a base system with what README.md asks
# of a machine (git, make, gcc); the Go toolchain is this machine's,
# bind-mounted read-only. None of the programs of scripts/programs.txt is
# there (checked before starting), nor a GOPATH, a module cache or a build
# cache: everything the commands need must come from the repository's own
# install steps (scripts/install-deps.sh, go.mod).
#
# The repository is cloned from HEAD: commit first, as CI does.
# The Debian mirror is read from this machine's apt configuration, and the
# root gets the same apt sources, so it reaches what this machine reaches.
#   scripts/fresh-check.sh [workdir]     (as root; about 15 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

[ "$(id -u)" -eq 0 ] || { echo "fresh-check: needs root (debootstrap, mount, chroot)" >&2; exit 1; }
goroot=$(go env GOROOT)

# The suite and mirror of the first plain "<suite>/main" source apt knows
# (not -updates or -security).
read -r mirror suite < <(apt-cache policy | awk '$2 ~ /^https?:\/\// && $3 ~ /^[a-z]+\/main$/ {
  split($3, s, "/"); print $2, s[1]; exit }') || true
if [ -z "${mirror:-}" ]; then
  echo "fresh-check: apt-cache policy lists no <suite>/main source; run apt-get update first" >&2
  exit 1
fi

root=${1:-$(mktemp -d /var/tmp/shardproxy-fresh.XXXXXX)}
mounts=()
cleanup() {
  local rc=$?
  # Stop whatever the check left running inside the root, then unmount in
  # reverse order and remove the root.
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$root" ] && kill -9 "$pid" 2>/dev/null
  done
  sleep 0.5
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[i]}" 2>/dev/null || true; done
  [ -z "${KEEP:-}" ] && rm -rf --one-file-system "$root"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mountat() { [ -e "$root$2" ] || mkdir -p "$root$2"; mount "${@:3}" "$1" "$root$2"; mounts+=("$root$2"); }

step() { printf '\n== fresh-check: %s (%s)\n' "$*" "$(date -u +%T)"; }

# What a new machine of this kind has besides Go: git, make, gcc for cgo
# (the race detector), and CA certificates for the module proxy.
base=ca-certificates,git,make,gcc,libc6-dev
step "debootstrap $suite from $mirror into $root (minbase + $base)"
debootstrap --variant=minbase --include="$base" "$suite" "$root" "$mirror" >"$root.debootstrap.log" 2>&1 || {
  tail -20 "$root.debootstrap.log" >&2; exit 1; }
rm -f "$root.debootstrap.log"

# The machine's apt sources and settings, DNS, and its rule that package
# installs start no services (policy-rc.d): a real machine of this kind
# has them too.
rm -f "$root/etc/apt/sources.list" # debootstrap's own: the machine's replace it
cp -a /etc/apt/sources.list.d/. "$root/etc/apt/sources.list.d/"
if [ -f /etc/apt/sources.list ]; then cp /etc/apt/sources.list "$root/etc/apt/sources.list"; fi
cp -a /etc/apt/apt.conf.d/. "$root/etc/apt/apt.conf.d/" 2>/dev/null || true
cp /etc/resolv.conf "$root/etc/resolv.conf"
# The machine's own certificate authorities (its network may need them to
# reach the module proxy over HTTPS).
if [ -d /usr/local/share/ca-certificates ]; then
  cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null 2>&1
fi
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
rm -f "$root"/var/lib/apt/lists/*_Packages # apt-get update has not run: as on a new machine

mountat proc /proc -t proc
mountat sysfs /sys -t sysfs
mountat /dev /dev --rbind
mountat "$goroot" /usr/local/go --bind -o ro
# The tests reserve ports with a lock file in TMPDIR; sharing this machine's
# keeps the check's tests and any other test run here off each other's ports.
lock=${TMPDIR:-/tmp}/shardproxy-test-ports.lock
touch "$lock"
touch "$root/tmp/shardproxy-test-ports.lock"
mountat "$lock" /tmp/shardproxy-test-ports.lock --bind

git clone -q "$repo" "$root/src/shardproxy"
echo "fresh-check: cloned $(git -C "$root/src/shardproxy" log -1 --format='%h %s')"

# The environment of a new login: Go on PATH, nothing cached. The host's
# Go settings (proxy, flags, toolchain) are kept: they are the machine's.
envs=(PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  HOME=/root TERM=dumb LANG=C.UTF-8 CI=true)
for v in GOPROXY GOSUMDB GONOSUMDB GOPRIVATE GOFLAGS GOTOOLCHAIN http_proxy https_proxy no_proxy; do
  [ -n "${!v:-}" ] && envs+=("$v=${!v}")
done
inroot() { chroot "$root" /usr/bin/env -i "${envs[@]}" bash -c "cd /src/shardproxy && $1"; }

step "the root starts without the listed programs and without Go caches"
# Essential packages (coreutils, util-linux) and the base above cannot be
# absent from any Debian: their programs are only reported.
absent=0 present=() basic=()
while read -r prog pkg _; do
  [ "$pkg" = - ] && continue
  if ! inroot "command -v $prog >/dev/null || [ -x /usr/sbin/$prog ] || [ -x /sbin/$prog ]"; then
    absent=$((absent + 1))
  elif [[ ",$base," == *",$pkg,"* ]] || [ "$(inroot "dpkg-query -W -f='\${Essential}' $pkg 2>/dev/null")" = yes ]; then
    basic+=("$prog")
  else
    present+=("$prog")
  fi
done < <(grep -v '^[[:space:]]*#' scripts/programs.txt | awk 'NF >= 3')
if [ ${#present[@]} -gt 0 ]; then
  echo "fresh-check: the base root already has ${present[*]}: it proves nothing about them" >&2
  exit 1
fi
echo "fresh-check: from Debian's essential packages or the base, present as on any machine: ${basic[*]}"
echo "fresh-check: $absent listed programs absent"
inroot 'go version; for d in "$(go env GOPATH)" "$(go env GOCACHE)" "$(go env GOMODCACHE)"; do
  [ -e "$d" ] && { echo "fresh-check: $d exists already" >&2; exit 1; }; echo "absent: $d"; done'

step "make demo"
# The demo runs in the foreground until Ctrl-C: start it, try what the
# README suggests, then interrupt it as a user would.
# setsid: the demo gets a process group of its own, the group Ctrl-C would
# signal; $$ of the shell it execs into is the group's id.
inroot 'setsid bash -c "echo \$\$ >/tmp/demo.pid; exec make demo" >/tmp/demo.log 2>&1 &'
ok=""
for _ in $(seq 1 600); do
  if inroot 'command -v redis-cli >/dev/null && redis-cli -p 22121 ping 2>/dev/null | grep -q PONG'; then ok=1; break; fi
  sleep 1
done
if [ -z "$ok" ]; then echo "fresh-check: make demo did not come up in 10 minutes:" >&2; inroot 'tail -30 /tmp/demo.log' >&2; exit 1; fi
inroot 'set -e
  redis-cli -p 22121 set foo bar | grep -qx OK
  redis-cli -p 22121 get foo | grep -qx bar
  printf "set a 0 0 1\r\nx\r\n" | nc -q 1 127.0.0.1 22123 | grep -q STORED
  printf "get a\r\n" | nc -q 1 127.0.0.1 22123 | grep -q "^VALUE a 0 1"
  redis-cli -p 22121 info | grep -q "^uptime_in_seconds:"
  nc -q 1 127.0.0.1 22222 </dev/null | grep -q "\"service\":\"nutcracker\""
  curl -sf 127.0.0.1:22222/metrics | grep -q "^shardproxy_"
  echo "fresh-check: make demo answers: SET/GET through the Redis pool, set/get through the Memcached pool, INFO, the stats JSON, /metrics"'
# running PID: the process exists and is not a zombie (the machine's init
# may not reap the orphans of the chroot). inroot_procs: what still runs in
# the root.
running() { [ -r "/proc/$1/stat" ] && [ "$(sed 's/^.*) //' "/proc/$1/stat" | cut -d' ' -f1)" != Z ]; }
inroot_procs() {
  for d in /proc/[0-9]*; do
    if [ "$(readlink "$d/root" 2>/dev/null)" = "$root" ] && running "${d#/proc/}"; then
      tr '\0' ' ' <"$d/cmdline"; echo
    fi
  done
  return 0
}
pgid=$(cat "$root/tmp/demo.pid")
kill -INT -- "-$pgid"
# shardproxy lets in-flight requests finish for up to 5 s; allow for a
# loaded machine.
for _ in $(seq 1 300); do
  running "$pgid" || [ -n "$(inroot_procs)" ] || break
  sleep 0.1
done
left=$(inroot_procs)
if running "$pgid" || [ -n "$left" ]; then
  echo "fresh-check: make demo did not stop within 30 s of Ctrl-C; still running:" >&2
  echo "$left" >&2
  tail -5 "$root/tmp/demo.log" >&2
  exit 1
fi
echo "fresh-check: make demo stopped everything on Ctrl-C"

step "make test"
start=$(date +%s)
log=$root.test.log
set +e
inroot 'make test' >"$log" 2>&1
rc=$?
set -e
grep -E '^(ok|FAIL|--- FAIL|panic:|installing:)' "$log" || true
echo "fresh-check: make test exited $rc after $(($(date +%s) - start)) s; its output is in $log"
echo "fresh-check: $(grep -c '^ok' "$log") packages ok, $(grep -c '^--- FAIL' "$log") tests failed"
exit "$rc"
