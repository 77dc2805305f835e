#!/usr/bin/env bash
# What the stats cost: the same shardproxy binary with latency measurement on
# (as it runs) and off (SHARDPROXY_LATENCY=off), one process at a time on the
# same port — a fresh process per round and mode, the order alternating — so
# that no instance is favoured. Running both side by side showed ±20 % between
# two identical instances on a 2-core machine, more than what is measured.
# Prints a Markdown table of medians. Usage: bench/statscost.sh [binary] [rounds]
set -euo pipefail
bin=${1:-bin/shardproxy}
rounds=${2:-10}
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$dir"' EXIT
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
r1=$(freeport); r2=$(freeport); port=$(freeport); sport=$(freeport)
for p in $r1 $r2; do
  redis-server --port "$p" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >/dev/null &
done
printf 'p:\n  listen: 127.0.0.1:%s\n  redis: true\n  servers:\n   - 127.0.0.1:%s:1\n   - 127.0.0.1:%s:1\n' "$port" "$r1" "$r2" > "$dir/sp.yml"
sleep 0.5
cpu() { awk '{s+=$1} END {printf "%.0f", s}' /proc/"$1"/task/*/schedstat; }
out="$dir/samples"
: > "$out"
for round in $(seq 1 "$rounds"); do
  order="on off"; [ $((round % 2)) = 0 ] && order="off on"
  for mode in $order; do
    latency=on; [ "$mode" = off ] && latency=off
    SHARDPROXY_LATENCY=$latency "$bin" -c "$dir/sp.yml" -v 3 -s "$sport" -a 127.0.0.1 &
    pid=$!
    sleep 0.4
    for w in "50 100000 1" "1 20000 1" "50 300000 16"; do
      set -- $w
      c0=$(cpu $pid)
      rps=$(redis-benchmark -p "$port" -c "$1" -n "$2" -t get -P "$3" -r 100000 --csv -q 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"')
      c1=$(cpu $pid)
      echo "$mode GET_-P_$3_($1_clients) $rps $(( (c1 - c0) / $2 ))" >> "$out"
    done
    kill $pid; wait $pid 2>/dev/null || true
  done
done
med() { sort -g | awk '{a[NR]=$1} END {print (a[int((NR+1)/2)]+a[int(NR/2)+1])/2}'; }
echo "Stats cost, $(date -u +%F): median of $rounds rounds, one process at a time (bench/statscost.sh)."
echo
echo "| workload | req/s on | req/s off | throughput on/off | CPU µs/req on | off | CPU on/off |"
echo "|---|---|---|---|---|---|---|"
for w in $(awk '{print $2}' "$out" | sort -u); do
  on=$(grep "^on $w " "$out" | awk '{print $3}' | med); off=$(grep "^off $w " "$out" | awk '{print $3}' | med)
  con=$(grep "^on $w " "$out" | awk '{print $4}' | med); coff=$(grep "^off $w " "$out" | awk '{print $4}' | med)
  awk -v w="$w" -v on="$on" -v off="$off" -v con="$con" -v coff="$coff" 'BEGIN {gsub("_", " ", w);
    printf "| %s | %.0f | %.0f | **%.3f** | %.2f | %.2f | **%.3f** |\n", w, on, off, on/off, con/1000, coff/1000, con/coff}'
done
