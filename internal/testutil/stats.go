package testutil

import (
	"io"
	"net"
	"testing"
	"time"
)

// ReadStats reads what a stats port (nutcracker's or shardproxy's) sends a
// client that sends nothing: the JSON document, then the server's close.
func ReadStats(t testing.TB, addr string) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading %s: %v (after %q)", addr, err, b)
	}
	return b
}
