package testutil

import (
	"fmt"
	"net"
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

// FreePort returns a TCP port that is free on 127.0.0.1, chosen by the
// kernel, and never returns the same port twice in one test process. Another
// process may still take the port before the caller binds it; the Start
// functions detect that and fail rather than talk to the wrong server.
func FreePort(t testing.TB) int {
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
