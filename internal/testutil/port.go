package testutil

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// handedOut remembers every port FreePort has returned in this process.
//
// This is mutable package state, kept deliberately: between FreePort closing
// its probe listener and the server binding the port, the kernel may hand
// the same port to the next FreePort call, and two servers of one test
// binary would then fight over it. The set only grows, and mu guards it.
var handedOut = struct {
	mu    sync.Mutex
	ports map[int]bool
}{ports: make(map[int]bool)}

// claimPort records port as handed out; it reports false if it already was.
func claimPort(port int) bool {
	handedOut.mu.Lock()
	defer handedOut.mu.Unlock()
	if handedOut.ports[port] {
		return false
	}
	handedOut.ports[port] = true
	return true
}

// Ports come from below the kernel's ephemeral range, which `go test ./...`
// shares between its test binaries running in parallel: a port the kernel
// hands to one binary's ":0" listener (a proxy under test, or another
// binary's probe) can never be one of these. Test binaries keep out of each
// other's way with a lock per port (lockPort), held until they exit.
const (
	// reservedPorts is how many ports below the ephemeral range are used.
	reservedPorts = 8000
	// lowestPort keeps clear of well-known and registered service ports.
	lowestPort = 10000
)

// portRange returns the ports FreePort picks from, [lo, hi), or ok false
// when the ephemeral range starts too low to leave room below it.
func portRange() (lo, hi int, ok bool) {
	hi = 32768 // Linux's default, when the range cannot be read
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				hi = n
			}
		}
	}
	lo = max(hi-reservedPorts, lowestPort)
	return lo, hi, hi-lo >= 1000
}

// FreePort returns a TCP port that is free on 127.0.0.1 and reserved for
// this test process: it never returns the same port twice, and no other
// test process using FreePort gets it while this one runs. A process that
// does not use FreePort may still take the port before the caller binds it;
// the Start functions detect that and fail rather than talk to the wrong
// server.
func FreePort(t testing.TB) int {
	t.Helper()
	lo, hi, ok := portRange()
	if !ok {
		return kernelPort(t)
	}
	start := lo + rand.IntN(hi-lo)
	for i := range hi - lo {
		port := lo + (start-lo+i)%(hi-lo)
		if !claimPort(port) {
			continue
		}
		if !lockPort(port) {
			continue // another test process has it; it stays claimed here
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // something outside the tests listens there
		}
		l.Close()
		return port
	}
	t.Fatalf("FreePort: no free port in %d-%d", lo, hi-1)
	return 0
}

// kernelPort is FreePort's fallback: a port chosen by the kernel, which may
// collide with another test process's.
func kernelPort(t testing.TB) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("FreePort: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if claimPort(port) {
			return port
		}
	}
	t.Fatal("FreePort: the kernel kept returning ports already handed out")
	return 0
}

// addrNetwork returns "unix" for an address that is a socket path (it
// contains a slash) and "tcp" otherwise.
func addrNetwork(addr string) string {
	if strings.Contains(addr, "/") {
		return "unix"
	}
	return "tcp"
}

// WaitListening polls until a connection to addr on network ("tcp" or
// "unix") succeeds, and fails the test if none has within timeout.
func WaitListening(t testing.TB, network, addr string, timeout time.Duration) {
	t.Helper()
	if err := waitAccepting(network, addr, time.Now().Add(timeout), nil); err != nil {
		t.Fatal(err)
	}
}

// pollInterval is how often waitAccepting dials.
const pollInterval = 10 * time.Millisecond

// waitAccepting dials addr until it accepts or the deadline passes. If
// exited is closed first (the server died), it gives up at once.
func waitAccepting(network, addr string, deadline time.Time, exited <-chan struct{}) error {
	for {
		c, err := net.DialTimeout(network, addr, 250*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s %s not accepting connections: %w", network, addr, err)
		}
		select {
		case <-exited:
			return errExited
		case <-time.After(pollInterval):
		}
	}
}

// accepting reports whether something accepts connections on addr now.
func accepting(network, addr string) bool {
	c, err := net.DialTimeout(network, addr, 250*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
