package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"
)

// blockWorkload is a BLPOP/RPUSH round trip: pairs consumers each block in
// BLPOP on their own key(s); each consumer's producer pushes one element,
// waits until the consumer has it, and pushes the next. So every round
// trip is a push, a wake-up and a pop, and nothing is pipelined.
type blockWorkload struct {
	name  string
	pairs int
	keys  int // keys per BLPOP: 2 puts them on both servers behind a proxy
}

// blockResult is one run: round trips per second and the push-to-pop
// latency percentiles in ms.
type blockResult struct {
	rps, p50, p99 float64
}

// blockRun runs w against port for n round trips in all; keys[i][s] is
// the key of pair i that the proxy places on server s (direct, every key
// is on the one server).
func blockRun(port int, w blockWorkload, n int, keys [][]string) blockResult {
	per := n / w.pairs
	lat := make([][]time.Duration, w.pairs)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range w.pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys := keys[i][:w.keys]
			cons := dialRESP(port)
			prod := dialRESP(port)
			defer cons.Close()
			defer prod.Close()
			blpop := respCommand(append(append([]string{"BLPOP"}, keys...), "0")...)
			push := respCommand("RPUSH", keys[len(keys)-1], "x")
			ls := make([]time.Duration, 0, per)
			for range per {
				// BLPOP, then the push from another connection at once:
				// the pop usually blocks first, and is woken by the push.
				t0 := time.Now()
				cons.write(blpop)
				prod.write(push)
				prod.readLine()
				cons.readReply()
				ls = append(ls, time.Since(t0))
			}
			lat[i] = ls
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	ms := func(q float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(q*float64(len(all)-1))]) / float64(time.Millisecond)
	}
	return blockResult{rps: float64(len(all)) / elapsed.Seconds(), p50: ms(0.5), p99: ms(0.99)}
}

// respConn is a bare RESP connection for the benchmark's own clients.
type respConn struct {
	net.Conn
	r *bufio.Reader
}

func dialRESP(port int) *respConn {
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	check(err)
	return &respConn{c, bufio.NewReader(c)}
}

func (c *respConn) write(b []byte) {
	_, err := c.Conn.Write(b)
	check(err)
}

func (c *respConn) readLine() string {
	line, err := c.r.ReadString('\n')
	check(err)
	return line
}

// readReply reads one reply whole (bulks and arrays of bulks).
func (c *respConn) readReply() {
	line := c.readLine()
	n, _ := strconv.Atoi(line[1 : len(line)-2])
	switch line[0] {
	case '$':
		if n >= 0 {
			_, err := io.CopyN(io.Discard, c.r, int64(n+2))
			check(err)
		}
	case '*':
		for range n {
			c.readReply()
		}
	case '-':
		check(fmt.Errorf("error reply %q", line))
	}
}

func respCommand(args ...string) []byte {
	b := fmt.Appendf(nil, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b
}

// keysOnServers returns, for each of pairs, a key on each server: where
// the proxy on proxyPort places it (checked by asking each server whether
// it got the key).
func keysOnServers(proxyPort int, redisPorts []int, pairs int) [][]string {
	out := make([][]string, pairs)
	next := 0
	for i := range out {
		out[i] = make([]string, len(redisPorts))
		for s := range redisPorts {
			for out[i][s] == "" {
				if next > 100000 {
					check(fmt.Errorf("no keys on every server"))
				}
				k := fmt.Sprintf("bq:%d", next)
				next++
				send(proxyPort, string(respCommand("SET", k, "probe")))
				if send(redisPorts[s], string(respCommand("EXISTS", k))) == ":1\r\n" {
					out[i][s] = k
				}
				send(proxyPort, string(respCommand("DEL", k)))
			}
		}
	}
	return out
}

// blockingTable measures the blocking workloads, shardproxy against a
// direct redis-server (nutcracker refuses blocking commands), alternating
// rounds, and prints the table.
func blockingTable(spPort int, redisPorts []int, rounds, n int) {
	workloads := []blockWorkload{
		{"BLPOP 1 key", 20, 1},
		{"BLPOP 2 keys (on 2 servers behind the proxy)", 20, 2},
	}
	keys := keysOnServers(spPort, redisPorts, 20)
	res := map[string]map[string][]blockResult{}
	for _, w := range workloads {
		res[w.name] = map[string][]blockResult{}
	}
	for round := range rounds {
		for _, w := range workloads {
			order := []string{"direct", "shardproxy"}
			if round%2 == 1 {
				order[0], order[1] = order[1], order[0]
			}
			for _, tg := range order {
				port := spPort
				if tg == "direct" {
					port = redisPorts[0]
				}
				res[w.name][tg] = append(res[w.name][tg], blockRun(port, w, n, keys))
			}
		}
	}
	med := func(rs []blockResult) blockResult {
		slices.SortFunc(rs, func(a, b blockResult) int { return cmpFloat(a.rps, b.rps) })
		return rs[len(rs)/2]
	}
	fmt.Printf("Blocking pops: 20 consumer/producer pairs, each round trip BLPOP on one connection then RPUSH on another, until BLPOP answers; %d round trips per run, median of %d rounds (nutcracker refuses BLPOP).\n\n", n, rounds)
	fmt.Println("| workload | direct round trips/s | sp round trips/s | sp/direct | direct p50 / p99 ms | sp p50 / p99 ms |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, w := range workloads {
		d, s := med(res[w.name]["direct"]), med(res[w.name]["shardproxy"])
		fmt.Printf("| %s | %.0f | %.0f | **%.2f** | %.3f / %.3f | %.3f / %.3f |\n", w.name, d.rps, s.rps, s.rps/d.rps, d.p50, d.p99, s.p50, s.p99)
	}
	fmt.Println()
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
