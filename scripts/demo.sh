#!/usr/bin/env bash
# make demo: 3 redis-server and 2 memcached on loopback, shardproxy in the
# foreground with conf/demo.yml. Ctrl-C stops everything this script started
# (by PID, never by name).
set -euo pipefail
cd "$(dirname "$0")/.."

redis_ports=(26380 26381 26382)
memcached_ports=(21211 21212)
proxy_ports=(22121 22123)
stats_port=22222

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "${redis_ports[@]}" "${memcached_ports[@]}" "${proxy_ports[@]}" $stats_port; do
  if port_busy "$p"; then
    echo "demo: port 127.0.0.1:$p is already in use; stop what holds it (or an earlier demo) and retry" >&2
    exit 1
  fi
done

dir=$(mktemp -d /tmp/shardproxy-demo.XXXXXX)
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "demo: stopping ${#pids[@]} processes"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup INT TERM EXIT

for p in "${redis_ports[@]}"; do
  redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$dir" --logfile "$dir/redis-$p.log" --protected-mode no &
  pids+=($!)
done
mc_user=(); [ "$(id -u)" -eq 0 ] && mc_user=(-u root)
for p in "${memcached_ports[@]}"; do
  memcached -l 127.0.0.1 -p "$p" -U 0 "${mc_user[@]}" >"$dir/memcached-$p.log" 2>&1 &
  pids+=($!)
done

wait_port() {
  for _ in $(seq 1 100); do port_busy "$1" && return 0; sleep 0.05; done
  echo "demo: nothing listens on 127.0.0.1:$1; logs are in $dir" >&2; return 1
}
for p in "${redis_ports[@]}" "${memcached_ports[@]}"; do wait_port "$p"; done

cat <<MSG
demo: redis-server on ${redis_ports[*]}, memcached on ${memcached_ports[*]} (127.0.0.1)
demo: shardproxy with conf/demo.yml; try, in another terminal:
    redis-cli -p 22121 set foo bar
    redis-cli -p 22121 get foo
    printf 'set a 0 0 1\r\nx\r\n' | nc 127.0.0.1 22123
    printf 'get a\r\n' | nc -q 1 127.0.0.1 22123
demo: Ctrl-C stops everything.

MSG
bin/shardproxy -c conf/demo.yml -a 127.0.0.1 -s "$stats_port" -v 6 &
pids+=($!)
wait "${pids[-1]}" || true
