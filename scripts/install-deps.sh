#!/usr/bin/env bash
# Installs the Debian packages of the programs that a make target needs,
# when they are missing. The programs, their packages and the targets that
# need them are in scripts/programs.txt, the one list. As root it runs
# apt-get; otherwise it names what to install.
#   scripts/install-deps.sh demo|test|bench|vectors|fresh
set -euo pipefail
cd "$(dirname "$0")"
group=${1:-test}
list=programs.txt

# nutcracker installs into /usr/sbin, which is not on every user's PATH;
# internal/testutil looks there too.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

known=$(awk '!/^#/ && NF >= 3 {for (i = 3; i <= NF && $i != "#"; i++) print $i}' "$list" | sort -u)
if ! grep -qx -- "$group" <<<"$known"; then
  echo "usage: $0 $(tr '\n' '|' <<<"$known" | sed 's/|$//')  (groups of scripts/$list)" >&2
  exit 2
fi

# present PROGRAM PACKAGE: a program is found in PATH; a library
# (INTERPRETER:MODULE) is there when its Debian package is installed.
present() {
  if [[ $1 == *:* ]]; then
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$2" 2>/dev/null)" = "ii " ]
  else
    command -v "$1" >/dev/null 2>&1
  fi
}

missing=() notdebian=()
while read -r prog pkg groups; do
  groups=${groups%%#*}
  [[ " $groups " == *" $group "* ]] || continue
  present "$prog" "$pkg" && continue
  if [ "$pkg" = - ]; then notdebian+=("$prog"); continue; fi
  [[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
done < <(grep -v '^[[:space:]]*#' "$list" | awk 'NF >= 3')

if [ ${#notdebian[@]} -gt 0 ]; then
  echo "not found, and not from a Debian package: ${notdebian[*]} (see scripts/$list)" >&2
  exit 1
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]}" >&2
  echo "install them as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# A machine whose package lists were never fetched (a fresh image) knows no
# package: fetch them once, then install.
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packages start system services on the default ports; the demo and the
# tests use their own ports and never need them.
for svc in redis-server redis-sentinel memcached nutcracker; do
  if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" >/dev/null 2>&1 || true; fi
done
# Check that the list is right: every program of the group is now found.
still=()
while read -r prog pkg groups; do
  groups=${groups%%#*}
  [[ " $groups " == *" $group "* ]] || continue
  present "$prog" "$pkg" || still+=("$prog ($pkg)")
done < <(grep -v '^[[:space:]]*#' "$list" | awk 'NF >= 3')
if [ ${#still[@]} -gt 0 ]; then
  echo "installed, yet still not found: ${still[*]}: scripts/$list names the wrong package" >&2
  exit 1
fi
