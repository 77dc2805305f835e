package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"
)

// mcWorkload is one Memcached load: conns connections, each sending depth
// requests per write (1 = not pipelined) and reading every reply.
type mcWorkload struct {
	name  string
	op    string // "get" or "set"
	conns int
	depth int
}

const (
	mcKeys      = 10000
	mcValueSize = 64
)

// mcPrefill stores every key the get workloads read.
func mcPrefill(port int) {
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	check(err)
	defer c.Close()
	value := strings.Repeat("v", mcValueSize)
	var b bytes.Buffer
	for i := 0; i < mcKeys; i++ {
		fmt.Fprintf(&b, "set key:%d 0 0 %d\r\n%s\r\n", i, mcValueSize, value)
	}
	go func() {
		_, err := c.Write(b.Bytes())
		check(err)
	}()
	r := bufio.NewReader(c)
	for i := 0; i < mcKeys; i++ {
		mcReadReply(r, "set")
	}
}

// mcRun sends total requests and returns the requests per second.
func mcRun(port int, w mcWorkload, total int) float64 {
	perConn := total / w.conns
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < w.conns; i++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			mcClient(port, w, perConn, seed)
		}(uint64(i))
	}
	wg.Wait()
	return float64(perConn*w.conns) / time.Since(start).Seconds()
}

// mcClient is one connection of the load: pre-built requests in batches
// of w.depth, every reply read and checked.
func mcClient(port int, w mcWorkload, n int, seed uint64) {
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	check(err)
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	rng := rand.New(rand.NewPCG(seed, 42))
	value := strings.Repeat("v", mcValueSize)
	var batch bytes.Buffer
	for done := 0; done < n; {
		k := min(w.depth, n-done)
		batch.Reset()
		for j := 0; j < k; j++ {
			key := rng.IntN(mcKeys)
			if w.op == "get" {
				fmt.Fprintf(&batch, "get key:%d\r\n", key)
			} else {
				fmt.Fprintf(&batch, "set key:%d 0 0 %d\r\n%s\r\n", key, mcValueSize, value)
			}
		}
		_, err := c.Write(batch.Bytes())
		check(err)
		for j := 0; j < k; j++ {
			mcReadReply(r, w.op)
		}
		done += k
	}
}

func mcReadReply(r *bufio.Reader, op string) {
	line, err := r.ReadSlice('\n')
	check(err)
	if op == "set" {
		if string(line) != "STORED\r\n" {
			log.Fatalf("set reply %q", line)
		}
		return
	}
	for bytes.HasPrefix(line, []byte("VALUE ")) {
		_, err = io.CopyN(io.Discard, r, mcValueSize+2)
		check(err)
		line, err = r.ReadSlice('\n')
		check(err)
	}
	if string(line) != "END\r\n" {
		log.Fatalf("get reply %q", line)
	}
}
