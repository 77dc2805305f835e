package main

import (
	"bufio"
	"fmt"
	"log"
	"net"
	"strconv"
	"sync"
	"time"
)

// The pub/sub fan-out row: 100 subscribers, each on one of 10 channels,
// and one publisher pipelining PUBLISH of 64-byte messages round robin
// over the channels. The figure is messages delivered to subscribers per
// second (each message reaches 10 of them), from the first PUBLISH until
// every subscriber has all of its messages. nutcracker cannot serve
// pub/sub, so the comparison is with one redis-server directly.
const (
	psSubscribers = 100
	psChannels    = 10
	psPipeline    = 100
)

// pubsubRun returns deliveries per second, and the CPU ns per delivery of
// pid (0: not measured) and of the redis-servers.
func pubsubRun(port, pid int, redisPIDs []int, messages int) sample {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	perSub := messages / psChannels
	var ready, done sync.WaitGroup
	conns := make([]net.Conn, psSubscribers)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		check(err)
		conns[i] = c
		ch := "bench.ch" + strconv.Itoa(i%psChannels)
		_, err = fmt.Fprintf(c, "*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n", len(ch), ch)
		check(err)
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			r := bufio.NewReaderSize(c, 64<<10)
			// The confirmation is 6 lines, each message 7.
			for range 6 {
				_, err := r.ReadSlice('\n')
				check(err)
			}
			ready.Done()
			for range perSub * 7 {
				if _, err := r.ReadSlice('\n'); err != nil {
					log.Fatalf("subscriber: %v", err)
				}
			}
		}()
	}
	ready.Wait()
	pub, err := net.Dial("tcp", addr)
	check(err)
	defer pub.Close()
	payload := fmt.Sprintf("%064d", 0)
	var reqs []byte
	for j := range psPipeline {
		ch := "bench.ch" + strconv.Itoa(j%psChannels)
		reqs = fmt.Appendf(reqs, "*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$64\r\n%s\r\n", len(ch), ch, payload)
	}
	go func() {
		// The publisher's replies: read and dropped.
		r := bufio.NewReader(pub)
		for range messages {
			if _, err := r.ReadSlice('\n'); err != nil {
				return
			}
		}
	}()
	p0, r0 := cpuNanos(pid), cpuNanos(redisPIDs...)
	start := time.Now()
	for sent := 0; sent < messages; sent += psPipeline {
		_, err := pub.Write(reqs)
		check(err)
	}
	done.Wait()
	elapsed := time.Since(start)
	p1, r1 := cpuNanos(pid), cpuNanos(redisPIDs...)
	for _, c := range conns {
		c.Close()
	}
	deliveries := float64(messages / psChannels * psSubscribers)
	s := sample{rps: deliveries / elapsed.Seconds(), redisCPU: float64(r1-r0) / deliveries}
	if pid != 0 {
		s.proxyCPU = float64(p1-p0) / deliveries
	}
	return s
}

// pubsubReport runs the fan-out row in alternating rounds against a
// redis-server directly and through shardproxy, and prints it.
func pubsubReport(direct, sp target, redisPIDs []int, rounds, messages int) {
	messages -= messages % psPipeline
	res := map[string][]sample{}
	for round := range rounds {
		for _, tg := range roundOrder([]target{direct, sp}, round) {
			res[tg.name] = append(res[tg.name], pubsubRun(tg.port, tg.pid, redisPIDs, messages))
		}
		log.Printf("pub/sub round %d/%d done", round+1, rounds)
	}
	d, s := median(res[direct.name]), median(res[sp.name])
	fmt.Printf("Pub/sub fan-out: %d subscribers on %d channels, one publisher pipelining %d PUBLISH at a time (64-byte messages, %d per run): messages delivered per second, and CPU µs per delivered message (nutcracker cannot serve pub/sub).\n\n",
		psSubscribers, psChannels, psPipeline, messages)
	fmt.Println("| workload | direct | sp | sp/direct | CPU sp | redis CPU direct / sp |")
	fmt.Println("|---|---|---|---|---|---|")
	fmt.Printf("| PUBLISH fan-out (%d subscribers) | %.0f | %.0f | **%.2f** | %.2f | %.2f / %.2f |\n\n",
		psSubscribers, d.rps, s.rps, s.rps/d.rps, s.proxyCPU/1000, d.redisCPU/1000, s.redisCPU/1000)
}
