package resp

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// result is what one ParseRequest or Scan call produced, in a comparable form.
type result struct {
	args   string // the Args, %q-quoted and space-separated
	inline bool
	n      int    // reply length (Scan); unused for requests
	err    string // "" on success
}

func (r result) String() string {
	if r.err != "" {
		return "error " + r.err
	}
	return fmt.Sprintf("args=%s inline=%v n=%d", r.args, r.inline, r.n)
}

func quoteArgs(args [][]byte) string {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%q", a)
	}
	return b.String()
}

// stream is the outcome of feeding a byte stream to a parser: every message
// in order, then either an error or the count of bytes left unconsumed
// (an incomplete message at the end).
type stream struct {
	results []result
	left    int
}

func (s stream) String() string {
	var b strings.Builder
	for _, r := range s.results {
		fmt.Fprintf(&b, "%v\n", r)
	}
	fmt.Fprintf(&b, "left=%d", s.left)
	return b.String()
}

func (s stream) equal(o stream) bool { return s.String() == o.String() }

// feedRequests plays a client connection: data arrives in pieces ending at
// each of cuts (increasing) and then at len(data); after each piece the
// connection parses every complete request and drops the bytes consumed,
// like a proxy session would. With move set, the unconsumed bytes are
// copied to a new array before each call, as a growing read buffer may be,
// to prove the parser keeps offsets rather than pointers across calls.
func feedRequests(t testing.TB, data []byte, cuts []int, move bool) stream {
	t.Helper()
	var (
		req      Request
		out      stream
		buf      []byte // unconsumed bytes, a window of data unless move
		consumed int
	)
	cuts = append(cuts, len(data))
	for _, end := range cuts {
		if end < consumed {
			continue
		}
		if move {
			buf = append(make([]byte, 0, end-consumed), data[consumed:end]...)
		} else {
			buf = data[consumed:end]
		}
		for {
			n, err := ParseRequest(buf, &req)
			if n < 0 || n > len(buf) {
				t.Fatalf("ParseRequest consumed %d of %d bytes", n, len(buf))
			}
			buf = buf[n:]
			consumed += n
			if errors.Is(err, ErrIncomplete) {
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
				if !errors.As(err, &pe) {
					t.Fatalf("error %v is not a *ProtocolError", err)
				}
				out.results = append(out.results, result{err: err.Error()})
				return out
			}
			if n == 0 || len(req.Args) == 0 {
				t.Fatalf("ParseRequest succeeded with n=%d and %d args", n, len(req.Args))
			}
			out.results = append(out.results, result{args: quoteArgs(req.Args), inline: req.Inline})
			if move {
				// A session that moves its buffer drops its references
				// to the old one.
				req.Forget()
			}
		}
	}
	out.left = len(data) - consumed
	return out
}

// feedReplies plays a backend connection for ReplyScanner as feedRequests
// does for requests.
func feedReplies(t testing.TB, data []byte, cuts []int, move bool) stream {
	t.Helper()
	return feedRepliesMax(t, data, 0, cuts, move)
}

// feedRepliesMax is feedReplies with a scanner whose MaxLine is maxLine.
func feedRepliesMax(t testing.TB, data []byte, maxLine int, cuts []int, move bool) stream {
	t.Helper()
	var (
		s        = ReplyScanner{MaxLine: maxLine}
		out      stream
		buf      []byte
		consumed int
	)
	cuts = append(cuts, len(data))
	for _, end := range cuts {
		if end < consumed {
			continue
		}
		if move {
			buf = append(make([]byte, 0, end-consumed), data[consumed:end]...)
		} else {
			buf = data[consumed:end]
		}
		for {
			n, err := s.Scan(buf)
			if errors.Is(err, ErrIncomplete) {
				if n != 0 {
					t.Fatalf("Scan returned n=%d with ErrIncomplete", n)
				}
				if s.Need() < 1 {
					t.Fatalf("Need() = %d after ErrIncomplete", s.Need())
				}
				break
			}
			if err != nil {
				var pe *ProtocolError
				if !errors.As(err, &pe) {
					t.Fatalf("error %v is not a *ProtocolError", err)
				}
				out.results = append(out.results, result{err: err.Error()})
				return out
			}
			if n <= 0 || n > len(buf) {
				t.Fatalf("Scan returned n=%d for %d bytes", n, len(buf))
			}
			out.results = append(out.results, result{n: n})
			buf = buf[n:]
			consumed += n
		}
	}
	out.left = len(data) - consumed
	return out
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

// checkLinear fails if parsing data in small pieces (incremental) costs
// much more than parsing it in one call (oneShot): a parser that restarted
// on each piece would be hundreds of times slower on these inputs. Without
// the race detector it also holds the pieces to an absolute limit.
func checkLinear(t *testing.T, oneShot, incremental func(), limit time.Duration) {
	t.Helper()
	timeIt := func(f func()) time.Duration {
		start := time.Now()
		f()
		return time.Since(start)
	}
	one := timeIt(oneShot)
	inc := timeIt(incremental)
	t.Logf("one call %v, in pieces %v", one, inc)
	if inc > 5*one+50*time.Millisecond {
		t.Errorf("in pieces took %v, one call %v: not linear", inc, one)
	}
	if !raceEnabled && inc > limit {
		t.Errorf("in pieces took %v, limit %v", inc, limit)
	}
}
