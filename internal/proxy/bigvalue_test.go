package proxy

// Large requests go from the client's read buffer to the server's socket
// without a copy (session.sendRead, backendConn.enqueue with lend). These
// tests send values past lendMin among small requests, in one write and in
// odd pieces, and check every reply and every stored value: a body written
// in the wrong place, twice, or after a buffer was reused would show.

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

// bigValue returns n bytes that differ from key to key and look like
// protocol here and there, so that a misplaced byte is noticed.
func bigValue(key string, n int) string {
	var b strings.Builder
	for b.Len() < n {
		fmt.Fprintf(&b, "%s:%d\r\n$5\r\nEND\r\n", key, b.Len())
	}
	return b.String()[:n]
}

// writePieces writes data in pieces of size piece (all at once when 0), in
// a goroutine, so that the caller can read replies meanwhile.
func writePieces(t *testing.T, c *rawClient, data string, piece int) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_ = c.conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
		if piece <= 0 {
			_, err := io.WriteString(c.conn, data)
			done <- err
			return
		}
		for len(data) > 0 {
			n := min(piece, len(data))
			if _, err := io.WriteString(c.conn, data[:n]); err != nil {
				done <- err
				return
			}
			data = data[n:]
			time.Sleep(50 * time.Microsecond)
		}
		done <- nil
	}()
	return done
}

func TestBigValuesRedis(t *testing.T) {
	servers := startRedises(t, 2)
	// redis_db: the prelude (SELECT) goes before requests already queued,
	// lent bodies included.
	_, addr := redisPool(t, "  redis_db: 1\n", servers...)
	sizes := []int{lendMin - 1, lendMin, 3*lendMin + 17, 1 << 20}
	for _, piece := range []int{0, 7919, 65536} {
		t.Run(fmt.Sprintf("pieces%d", piece), func(t *testing.T) {
			c := dialRaw(t, addr)
			var req strings.Builder
			var want []string
			for i, n := range sizes {
				k := fmt.Sprintf("big:%d:%d", piece, i)
				v := bigValue(k, n)
				req.WriteString(cmd("SET", "small", k))
				req.WriteString(cmd("SET", k, v))
				req.WriteString(cmd("GET", "small"))
				want = append(want, "+OK\r\n", "+OK\r\n", fmt.Sprintf("$%d\r\n%s\r\n", len(k), k))
			}
			// MSET split over both servers: fragments built in scratch,
			// lent when large.
			var msetArgs, mgetArgs []string
			var mget strings.Builder
			for i := range 6 {
				k := fmt.Sprintf("m:%d:%d", piece, i)
				v := bigValue(k, lendMin+i*1000)
				msetArgs = append(msetArgs, k, v)
				mgetArgs = append(mgetArgs, k)
				fmt.Fprintf(&mget, "$%d\r\n%s\r\n", len(v), v)
			}
			req.WriteString(cmd(append([]string{"MSET"}, msetArgs...)...))
			want = append(want, "+OK\r\n")
			req.WriteString(cmd(append([]string{"MGET"}, mgetArgs...)...))
			want = append(want, fmt.Sprintf("*%d\r\n%s", len(mgetArgs), mget.String()))
			for i, n := range sizes {
				k := fmt.Sprintf("big:%d:%d", piece, i)
				req.WriteString(cmd("GET", k))
				want = append(want, fmt.Sprintf("$%d\r\n%s\r\n", n, bigValue(k, n)))
			}
			done := writePieces(t, c, req.String(), piece)
			for i, w := range want {
				if got := c.readReply(); got != w {
					t.Fatalf("reply %d: got %d bytes %.60q, want %d bytes %.60q", i, len(got), got, len(w), w)
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestBigValuesMemcached(t *testing.T) {
	servers := startMemcacheds(t, 2)
	_, addr := memcachePool(t, "", servers...)
	for _, piece := range []int{0, 7919} {
		t.Run(fmt.Sprintf("pieces%d", piece), func(t *testing.T) {
			c := dialRaw(t, addr)
			var req strings.Builder
			var want strings.Builder
			var keys, values []string
			for i, n := range []int{lendMin - 1, lendMin, 200000} {
				for _, form := range []string{"plain", "noreply", "meta-q"} {
					k := fmt.Sprintf("big:%d:%d:%s", piece, i, form)
					v := bigValue(k, n)
					keys, values = append(keys, k), append(values, v)
					switch form {
					case "plain":
						fmt.Fprintf(&req, "set %s 7 0 %d\r\n%s\r\n", k, n, v)
						want.WriteString("STORED\r\n")
					case "noreply":
						// The line is rewritten without noreply; the data
						// block goes as sent.
						fmt.Fprintf(&req, "set %s 7 0 %d noreply\r\n%s\r\n", k, n, v)
					case "meta-q":
						fmt.Fprintf(&req, "ms %s %d F7 q\r\n%s\r\n", k, n, v)
					}
					req.WriteString("mn\r\n")
					want.WriteString("MN\r\n")
				}
			}
			fmt.Fprintf(&req, "get %s\r\n", strings.Join(keys, " "))
			for i, k := range keys {
				fmt.Fprintf(&want, "VALUE %s 7 %d\r\n%s\r\n", k, len(values[i]), values[i])
			}
			want.WriteString("END\r\n")
			done := writePieces(t, c, req.String(), piece)
			got := make([]byte, want.Len())
			_ = c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			if _, err := io.ReadFull(c.r, got); err != nil {
				t.Fatalf("reading replies: %v", err)
			}
			if w := want.String(); string(got) != w {
				i := 0
				for i < len(got) && got[i] == w[i] {
					i++
				}
				t.Fatalf("replies differ at byte %d: got %.80q, want %.80q", i, got[i:], w[i:])
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestBigValueServerFailure: a large body queued on a connection that fails
// is answered with an error and never written to the next connection.
func TestBigValueServerFailure(t *testing.T) {
	srv := testutil.StartRedis(t)
	_, addr := redisPool(t, "", srv)
	c := dialRaw(t, addr)
	if got := c.roundTrip(cmd("SET", "k", "v")); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	srv.Kill()
	v := bigValue("lost", 4*lendMin)
	if got := c.roundTrip(cmd("SET", "lost", v)); !strings.HasPrefix(got, "-ERR ") {
		t.Fatalf("SET with the server down: %q, want an error", got)
	}
	srv.Restart(t)
	w := bigValue("kept", 4*lendMin)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := c.roundTrip(cmd("SET", "kept", w))
		if got == "+OK\r\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SET after the restart: %q", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := c.roundTrip(cmd("GET", "kept")); got != fmt.Sprintf("$%d\r\n%s\r\n", len(w), w) {
		t.Fatalf("GET kept: %d bytes %.60q", len(got), got)
	}
	if got := c.roundTrip(cmd("EXISTS", "lost")); got != ":0\r\n" {
		t.Fatalf("EXISTS lost: %q (the failed SET was written after all)", got)
	}
	if !bytes.Equal([]byte(c.roundTrip(cmd("PING"))), []byte("+PONG\r\n")) {
		t.Fatal("PING")
	}
}

// TestBigTransaction: a transaction's block past lendMin is lent to the
// backend like a large request, and the next transaction builds a new one.
func TestBigTransaction(t *testing.T) {
	servers := startRedises(t, 2)
	_, addr := redisPool(t, "", servers...)
	c := dialRaw(t, addr)
	for round := range 3 {
		v := bigValue(fmt.Sprintf("tx%d", round), 3*lendMin+round)
		var req strings.Builder
		req.WriteString(cmd("MULTI"))
		req.WriteString(cmd("SET", "txkey", v))
		req.WriteString(cmd("APPEND", "txkey", "!"))
		req.WriteString(cmd("GET", "txkey"))
		req.WriteString(cmd("EXEC"))
		done := writePieces(t, c, req.String(), 0)
		for i, want := range []string{"+OK\r\n", "+QUEUED\r\n", "+QUEUED\r\n", "+QUEUED\r\n",
			fmt.Sprintf("*3\r\n+OK\r\n:%d\r\n$%d\r\n%s!\r\n", len(v)+1, len(v)+1, v)} {
			if got := c.readReply(); got != want {
				t.Fatalf("round %d reply %d: %d bytes %.60q, want %d bytes %.60q", round, i, len(got), got, len(want), want)
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
