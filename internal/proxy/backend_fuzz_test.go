package proxy

import (
	"bufio"
	"errors"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// FuzzServerReplies feeds arbitrary bytes from a server through the
// backend reader: a fake server answers the proxy's connection with the
// fuzzer's bytes and closes it. Whatever it sends, each of the client's
// three pipelined requests gets exactly one well-formed reply, in order,
// and nothing more. The pool has no timeout: a reply that never completes
// must be noticed by the end of stream alone.
func FuzzServerReplies(f *testing.F) {
	for _, seed := range []string{
		"$1\r\na\r\n$1\r\nb\r\n$-1\r\n", // three good replies
		"$1\r\na\r\n",                   // one, then the server closes
		"this is not resp\r\n",          // garbage
		"$abc\r\n",                      // a bad length
		"$-7\r\n",                       // a negative length
		"$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n+extra\r\n", // a reply nobody asked for
		"*2\r\n$1\r\na\r\n",                           // an array cut short
		"$100\r\nshort",                               // a bulk cut short
		"-ERR x\r\n:1\r\n+OK\r\n",                     // error, integer, status
		"*-1\r\n*0\r\n*1\r\n*1\r\n:1\r\n",             // nested arrays
		"",                                            // nothing at all
		"\x00\xff\r\n\r\n",                            // binary
	} {
		f.Add([]byte(seed))
	}
	var reply atomic.Pointer[[]byte]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Read(buf); err != nil {
					return
				}
				if r := reply.Load(); r != nil {
					_, _ = c.Write(*r)
				}
			}()
		}
	}()
	_, addr := startProxy(f, "alpha:\n  listen: 127.0.0.1:{{port}}\n  redis: true\n  servers:\n   - "+
		ln.Addr().String()+":1\n")
	f.Fuzz(func(t *testing.T, data []byte) {
		d := append([]byte(nil), data...)
		reply.Store(&d)
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(cmd("GET", "a") + cmd("GET", "b") + cmd("GET", "c"))); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(c)
		for i := range 3 {
			var b strings.Builder
			if err := readRESP(r, &b); err != nil {
				t.Fatalf("server sent %q: reply %d: %v (so far %q)", data, i, err, b.String())
			}
		}
		// Nothing more: the connection is quiet until the client speaks.
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if b, err := r.ReadByte(); err == nil {
			t.Fatalf("server sent %q: the client got a byte %q beyond its three replies", data, b)
		} else if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("server sent %q: the client connection ended: %v", data, err)
		}
	})
}
