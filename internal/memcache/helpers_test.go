package memcache

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// describe renders a parsed request in a comparable form, listing only the
// fields that are set.
func describe(req *Request) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v", req.Command)
	if string(req.Name) != req.Command.String() {
		fmt.Fprintf(&b, " name=%q", req.Name)
	}
	if len(req.Keys) > 0 {
		fmt.Fprintf(&b, " keys=%s", quoteList(req.Keys))
	}
	if req.Exptime != nil {
		fmt.Fprintf(&b, " exptime=%q", req.Exptime)
	}
	if len(req.Flags) > 0 {
		fmt.Fprintf(&b, " flags=%s", quoteList(req.Flags))
	}
	if req.Opaque != nil {
		fmt.Fprintf(&b, " opaque=%q", req.Opaque)
	}
	if req.Noreply {
		b.WriteString(" noreply")
	}
	if req.Quiet {
		b.WriteString(" quiet")
	}
	if req.Base64 {
		fmt.Fprintf(&b, " base64 decoded=%q", req.DecodedKey())
	}
	if req.Data != nil {
		fmt.Fprintf(&b, " data=%q", req.Data)
	}
	return b.String()
}

func quoteList(l [][]byte) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, w := range l {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%q", w)
	}
	b.WriteByte(']')
	return b.String()
}

// describeErr renders a *ProtocolError in a comparable form.
func describeErr(pe *ProtocolError) string {
	s := fmt.Sprintf("ERR %q skip=%d", pe.Reply, pe.Skip)
	if pe.Noreply {
		s += " noreply"
	}
	if pe.Close {
		s += " close"
	}
	return s
}

// item is one outcome of parsing a stream: a request, or an error.
type item struct {
	desc string
	req  bool           // a request; else an error
	pe   *ProtocolError // the error, for the live test
	cmd  Command
	n    int // bytes of the request

	noreply, quiet bool // of the request
}

// stream is the outcome of feeding a byte stream to ParseRequest: every
// request or error in order, then the bytes left unconsumed (an incomplete
// request at the end) and, after a Skip beyond the data, the bytes still to
// discard.
type stream struct {
	items   []item
	left    int
	swallow int
	closed  bool
}

func (s stream) String() string {
	var b strings.Builder
	for _, it := range s.items {
		fmt.Fprintf(&b, "%s\n", it.desc)
	}
	fmt.Fprintf(&b, "left=%d swallow=%d", s.left, s.swallow)
	return b.String()
}

func (s stream) descs() []string {
	var d []string
	for _, it := range s.items {
		d = append(d, it.desc)
	}
	return d
}

func (s stream) equal(o stream) bool { return s.String() == o.String() }

// feedRequests plays a client connection: data arrives in pieces ending at
// each of cuts (increasing) and then at len(data); after each piece the
// connection parses every complete request and drops the bytes consumed,
// like a proxy session would; after an error it drops Skip bytes (some of
// them perhaps still to come) and goes on, or stops at Close. With move
// set, the unconsumed bytes are copied to a new array before each call, as
// a growing read buffer may be, to prove the parser keeps offsets rather
// than pointers across calls.
func feedRequests(t testing.TB, data []byte, cuts []int, move bool) stream {
	t.Helper()
	var (
		req      Request
		out      stream
		consumed int // bytes of data parsed or skipped
	)
	cuts = append(cuts, len(data))
	for _, end := range cuts {
		if end <= consumed {
			continue
		}
		if out.swallow > 0 {
			d := min(out.swallow, end-consumed)
			out.swallow -= d
			consumed += d
			if out.swallow > 0 {
				continue
			}
		}
		var buf []byte
		if move {
			buf = append(make([]byte, 0, end-consumed), data[consumed:end]...)
		} else {
			buf = data[consumed:end]
		}
		for len(buf) > 0 {
			n, err := ParseRequest(buf, &req)
			if n < 0 || n > len(buf) {
				t.Fatalf("ParseRequest consumed %d of %d bytes", n, len(buf))
			}
			if errors.Is(err, ErrIncomplete) {
				if n != 0 {
					t.Fatalf("ErrIncomplete with n=%d", n)
				}
				if req.Need() < 1 {
					t.Fatalf("Need() = %d after ErrIncomplete", req.Need())
				}
				if move {
					req.Forget() // the partial request survives it
				}
				break
			}
			if err != nil {
				var pe *ProtocolError
				if !errors.As(err, &pe) || n != 0 {
					t.Fatalf("error %v (n=%d) is not a *ProtocolError", err, n)
				}
				out.items = append(out.items, item{desc: describeErr(pe), pe: pe})
				if pe.Close {
					if pe.Skip != 0 {
						t.Fatalf("Close with Skip %d", pe.Skip)
					}
					out.closed = true
					out.left = len(data) - consumed
					return out
				}
				if pe.Skip <= 0 {
					t.Fatalf("error without Skip or Close: %v", pe)
				}
				if pe.Skip > len(buf) {
					out.swallow = pe.Skip - len(buf)
					consumed += len(buf)
					break
				}
				buf = buf[pe.Skip:]
				consumed += pe.Skip
				continue
			}
			if n == 0 {
				t.Fatalf("ParseRequest succeeded with n=0")
			}
			checkRequestSlices(t, &req, buf[:n])
			out.items = append(out.items, item{desc: describe(&req), req: true, cmd: req.Command, n: n,
				noreply: req.Noreply, quiet: req.Quiet})
			if move {
				// A session that moves its buffer drops its references
				// to the old one.
				req.Forget()
			}
			buf = buf[n:]
			consumed += n
		}
	}
	out.left = len(data) - consumed - out.swallow
	if out.swallow > 0 {
		out.left = 0
	}
	return out
}

// checkRequestSlices checks the invariants of a parsed request: Line and
// Data make up the request's bytes, and the words are the line's.
func checkRequestSlices(t testing.TB, req *Request, raw []byte) {
	t.Helper()
	if got := string(req.Line) + string(req.Data); got != string(raw) {
		t.Fatalf("Line+Data = %q, request bytes %q", got, raw)
	}
	if req.Command.IsStorage() != (req.Data != nil) {
		t.Fatalf("%v: Data = %q", req.Command, req.Data)
	}
	if len(req.Name) == 0 || lookup(req.Name) != req.Command {
		t.Fatalf("Name %q for %v", req.Name, req.Command)
	}
	for _, a := range req.Args {
		if len(a) == 0 || cap(a) != len(a) {
			t.Fatalf("word %q with cap %d", a, cap(a))
		}
	}
}

// splitPoints returns the prefix lengths to try for an input of n bytes:
// all of them for small inputs, else both ends and a sample between.
func splitPoints(n int) []int {
	var ks []int
	for k := 0; k <= n; k++ {
		if n <= 4096 || k < 200 || k > n-200 || k%997 == 0 {
			ks = append(ks, k)
		}
	}
	return ks
}

// everyByte returns the cuts 1, 2, ..., n-1: data arriving a byte at a time.
func everyByte(n int) []int {
	cuts := make([]int, 0, n)
	for k := 1; k < n; k++ {
		cuts = append(cuts, k)
	}
	return cuts
}

// checkLinear fails if parsing in small pieces (incremental) costs much
// more than parsing in one call (oneShot): a parser that rescanned on each
// piece would be hundreds of times slower on these inputs. Each is timed
// at its best of three runs, so that a busy machine does not fail the
// test. Without the race detector the pieces are also held to an absolute
// limit.
func checkLinear(t *testing.T, oneShot, incremental func(), limit time.Duration) {
	t.Helper()
	best := func(f func()) time.Duration {
		var d time.Duration
		for i := range 3 {
			start := time.Now()
			f()
			if e := time.Since(start); i == 0 || e < d {
				d = e
			}
		}
		return d
	}
	one := best(oneShot)
	inc := best(incremental)
	t.Logf("one call %v, in pieces %v", one, inc)
	if inc > 5*one+50*time.Millisecond {
		t.Errorf("in pieces took %v, one call %v: not linear", inc, one)
	}
	if !raceEnabled && inc > limit {
		t.Errorf("in pieces took %v, limit %v", inc, limit)
	}
}
