package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestFDReserveRefuse drives the spare descriptor's refusal over loopback,
// with descriptors to spare: what is tested is the accept-write-close path
// and the reopening of the spare, not running out (TestOutOfDescriptors in
// cmd/shardproxy does that, in a process of its own).
func TestFDReserveRefuse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rc, err := ln.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	r := newFDReserve()
	defer r.release()
	if !r.fill() || r.missing() {
		t.Fatal("no spare descriptor")
	}
	reply := []byte("-ERR max number of clients reached\r\n")

	// Nothing waits: refuse says so without blocking, and waitAcceptable
	// returns after its bound.
	if res, err := r.refuse(rc, reply); res != queueEmpty || err != nil {
		t.Fatalf("empty queue: %v, %v", res, err)
	}
	start := time.Now()
	waitAcceptable(rc)
	if d := time.Since(start); d < acceptWait/2 || d > 20*acceptWait {
		t.Errorf("waitAcceptable with no client returned after %v, want about %v", d, acceptWait)
	}

	// A client that has sent a request is accepted, told and closed; its
	// request was read, so the close is a FIN and the reply arrives whole.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "PING\r\n"); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	waitAcceptable(rc)
	if d := time.Since(start); d > acceptWait/2 {
		t.Errorf("waitAcceptable with a client waiting took %v", d)
	}
	res, err := r.refuse(rc, reply)
	if res != refusedOne || err != nil {
		t.Fatalf("refuse: %v, %v", res, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(bufio.NewReader(c))
	if string(got) != string(reply) || err != nil {
		t.Errorf("refused client read %q, %v; want %q then EOF", got, err, reply)
	}
	if r.missing() || r.fd < 0 {
		t.Error("the spare was not reopened")
	}

	// A closed listener is reported as such.
	ln.Close()
	if _, err := r.refuse(rc, reply); !errors.Is(err, net.ErrClosed) {
		t.Errorf("refuse on a closed listener: %v, want net.ErrClosed", err)
	}
	if r.missing() {
		t.Error("the spare was not reopened after the failed accept")
	}
	r.release()
	if r.fd != -1 || r.missing() {
		t.Errorf("after release: fd %d, missing %v", r.fd, r.missing())
	}
}
