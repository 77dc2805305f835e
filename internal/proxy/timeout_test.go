package proxy

import (
	"net"
	"slices"
	"testing"
	"time"
)

// TestTimeoutPrecision: a request to a server that never answers gets
// -ERR Connection timed out between 1.0 and 1.1 × timeout after it was
// sent (the sweep runs every timeout/16).
func TestTimeoutPrecision(t *testing.T) {
	// A black hole: accepts, never reads or answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	const timeout = 400 * time.Millisecond
	_, addr := startProxy(t, "alpha:\n  listen: 127.0.0.1:{{port}}\n  redis: true\n  timeout: 400\n  servers:\n   - "+
		ln.Addr().String()+":1\n")
	c := dialRaw(t, addr)
	c.roundTrip(cmd("GET", "warm")) // the first one also dials
	var took []time.Duration
	for range 5 {
		start := time.Now()
		got := c.roundTrip(cmd("GET", "k"))
		d := time.Since(start)
		if got != "-ERR Connection timed out\r\n" {
			t.Fatalf("GET = %q", got)
		}
		if d < timeout {
			t.Errorf("timed out after %v, before the timeout of %v", d, timeout)
		}
		took = append(took, d)
	}
	slices.Sort(took)
	median := took[len(took)/2]
	t.Logf("timed out after %v: median %.3f × timeout", took, float64(median)/float64(timeout))
	// The median, not the worst: on a loaded 2-core machine one sweep
	// can be late by the scheduler's delay, which no sweep design avoids.
	if limit := timeout*11/10 + 10*time.Millisecond; median > limit {
		t.Errorf("median time to the timeout reply %v, want at most %v (1.1 × timeout)", median, limit)
	}
}

func TestSweepEvery(t *testing.T) {
	for _, tc := range []struct {
		timeout time.Duration
		every   time.Duration
		ticks   int
	}{
		{400 * time.Millisecond, 25 * time.Millisecond, 16},
		{16 * time.Millisecond, time.Millisecond, 16},
		{10 * time.Millisecond, time.Millisecond, 10},
		{time.Microsecond, time.Millisecond, 1},
	} {
		every, ticks := sweepEvery(tc.timeout)
		if every != tc.every || ticks != tc.ticks {
			t.Errorf("sweepEvery(%v) = %v, %d; want %v, %d", tc.timeout, every, ticks, tc.every, tc.ticks)
		}
	}
}
