#!/usr/bin/env bash
# What the stats cost: the same shardproxy binary with latency measurement on
# (as it runs) and off (SHARDPROXY_LATENCY=off), one process at a time on the
# same port — a fresh process per round and mode, the order alternating — so
# that no instance is favoured. Running both side by side showed ±20 % between
# two identical instances on a 2-core machine, more than what is measured.
# Each round runs both modes back to back, so the ratio of a round's pair
# cancels the drift between rounds; the table gives the median of the
# rounds' ratios and their interquartile range. With "aa" as the third
# argument both modes are "on": an A/A run that shows the noise floor.
# Prints a Markdown table. Usage: bench/statscost.sh [binary] [rounds] [aa]
set -euo pipefail
bin=${1:-bin/shardproxy}
rounds=${2:-10}
aa=${3:-}
args="$*"
# PIN=1 gives the proxy CPU 0 and the servers and the load CPU 1, so they
# do not take turns on one core: the proxy's CPU per request is then the
# steadier measure, and throughput is bounded by the load's core.
sp_pin=(); load_pin=()
if [ "${PIN:-}" = 1 ]; then sp_pin=(taskset -c 0); load_pin=(taskset -c 1); fi
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$dir"' EXIT
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
r1=$(freeport); r2=$(freeport); port=$(freeport); sport=$(freeport)
for p in $r1 $r2; do
  "${load_pin[@]}" redis-server --port "$p" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >/dev/null &
done
printf 'p:\n  listen: 127.0.0.1:%s\n  redis: true\n  servers:\n   - 127.0.0.1:%s:1\n   - 127.0.0.1:%s:1\n' "$port" "$r1" "$r2" > "$dir/sp.yml"
sleep 0.5
cpu() { awk '{s+=$1} END {printf "%.0f", s}' /proc/"$1"/task/*/schedstat; }
out="$dir/samples"
: > "$out"
for round in $(seq 1 "$rounds"); do
  order="on off"; [ $((round % 2)) = 0 ] && order="off on"
  for mode in $order; do
    latency=on; [ "$mode" = off ] && [ "$aa" != aa ] && latency=off
    SHARDPROXY_LATENCY=$latency "${sp_pin[@]}" "$bin" -c "$dir/sp.yml" -v 3 -s "$sport" -a 127.0.0.1 &
    pid=$!
    sleep 0.4
    for w in "50 100000 1" "1 20000 1" "50 300000 16"; do
      set -- $w
      c0=$(cpu $pid)
      rps=$("${load_pin[@]}" redis-benchmark -p "$port" -c "$1" -n "$2" -t get -P "$3" -r 100000 --csv -q 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"')
      c1=$(cpu $pid)
      echo "$mode GET_-P_$3_($1_clients) $rps $(( (c1 - c0) / $2 )) $round" >> "$out"
    done
    kill $pid; wait $pid 2>/dev/null || true
  done
done
med() { sort -g | awk '{a[NR]=$1} END {print (a[int((NR+1)/2)]+a[int(NR/2)+1])/2}'; }
# quartiles prints the lower and upper quartile of its input.
quartiles() { sort -g | awk '{a[NR]=$1} END {q=int((NR+3)/4); printf "%.3f–%.3f", a[q], a[NR+1-q]}'; }
# ratios prints, for workload $1 and column $2, each round's on/off ratio.
ratios() { awk -v w="$1" -v c="$2" '$2 == w {v[$5 " " $1] = $c; r[$5] = 1}
  END {for (i in r) if (v[i " off"] > 0) print v[i " on"] / v[i " off"]}' "$out"; }
off_label=off; [ "$aa" = aa ] && off_label="on (A/A)"
echo "Stats cost, $(date -u +%F): $rounds rounds, one process at a time (bench/statscost.sh $args${PIN:+, PIN=$PIN})."
echo "Ratios are on/$off_label per round: median, and the middle half of the rounds."
echo
echo "| workload | req/s on | req/s $off_label | throughput on/$off_label | middle half | CPU µs/req on | $off_label | CPU on/$off_label | middle half |"
echo "|---|---|---|---|---|---|---|---|---|"
for w in $(awk '{print $2}' "$out" | sort -u); do
  on=$(grep "^on $w " "$out" | awk '{print $3}' | med); off=$(grep "^off $w " "$out" | awk '{print $3}' | med)
  con=$(grep "^on $w " "$out" | awk '{print $4}' | med); coff=$(grep "^off $w " "$out" | awk '{print $4}' | med)
  tr=$(ratios "$w" 3 | med); tq=$(ratios "$w" 3 | quartiles)
  cr=$(ratios "$w" 4 | med); cq=$(ratios "$w" 4 | quartiles)
  awk -v w="$w" -v on="$on" -v off="$off" -v con="$con" -v coff="$coff" -v tr="$tr" -v tq="$tq" -v cr="$cr" -v cq="$cq" 'BEGIN {gsub("_", " ", w);
    printf "| %s | %.0f | %.0f | **%.3f** | %s | %.2f | %.2f | **%.3f** | %s |\n", w, on, off, tr, tq, con/1000, coff/1000, cr, cq}'
done
