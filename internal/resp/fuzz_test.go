package resp

import (
	"bytes"
	"errors"
	"testing"
)

func FuzzParseRequest(f *testing.F) {
	for _, tc := range requestCases() {
		if len(tc.in) < 1024 {
			f.Add([]byte(tc.in), uint16(len(tc.in)/2))
		}
	}
	f.Add([]byte("*2\r\n$3\r\nGET\r\n$1\r\na\r\nset a \"b\\x00\"\r\n\r\n*0\r\n"), uint16(17))
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		checkShortBulkHeader(t, data)

		// One buffer, parsed request after request.
		var req Request
		buf := data
		for {
			n, err := ParseRequest(buf, &req)
			if n < 0 || n > len(buf) {
				t.Fatalf("n = %d for %d bytes", n, len(buf))
			}
			if err != nil {
				if !errors.Is(err, ErrIncomplete) {
					var pe *ProtocolError
					if !errors.As(err, &pe) || n != 0 {
						t.Fatalf("unexpected error %v (n=%d)", err, n)
					}
				}
				break
			}
			if n == 0 || len(req.Args) == 0 {
				t.Fatalf("success with n=%d and %d args", n, len(req.Args))
			}
			// Re-encoded as multibulk, the same arguments come back.
			enc := AppendCommand(nil, req.Args...)
			var again Request
			m, err := ParseRequest(enc, &again)
			if err != nil || m != len(enc) || quoteArgs(again.Args) != quoteArgs(req.Args) {
				t.Fatalf("re-encoded %q: m=%d err=%v args %s, want %s", enc, m, err, quoteArgs(again.Args), quoteArgs(req.Args))
			}
			buf = buf[n:]
		}

		// The same stream split anywhere, or a byte at a time, parses the same.
		want := feedRequests(t, data, nil, false)
		k := int(cut) % (len(data) + 1)
		if got := feedRequests(t, data, []int{k}, true); !got.equal(want) {
			t.Fatalf("split at %d:\n%v\nwant:\n%v", k, got, want)
		}
		if len(data) <= 4096 {
			if got := feedRequests(t, data, everyByte(len(data)), false); !got.equal(want) {
				t.Fatalf("byte by byte:\n%v\nwant:\n%v", got, want)
			}
		}
	})
}

func FuzzScanReply(f *testing.F) {
	for _, tc := range replyCases() {
		f.Add([]byte(tc.in), uint16(len(tc.in)/2))
	}
	f.Add([]byte("*3\r\n*1\r\n$2\r\nab\r\n:1\r\n*-1\r\n+OK\r\n$-1\r\n"), uint16(9))
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		want := feedReplies(t, data, nil, false)
		k := int(cut) % (len(data) + 1)
		if got := feedReplies(t, data, []int{k}, true); !got.equal(want) {
			t.Fatalf("split at %d:\n%v\nwant:\n%v", k, got, want)
		}
		if len(data) <= 4096 {
			if got := feedReplies(t, data, everyByte(len(data)), false); !got.equal(want) {
				t.Fatalf("byte by byte:\n%v\nwant:\n%v", got, want)
			}
		}
		// With a line bound, the outcome does not depend on how the bytes
		// arrive either.
		maxLine := 3 + int(cut%61)
		bounded := feedRepliesMax(t, data, maxLine, nil, false)
		if got := feedRepliesMax(t, data, maxLine, []int{k}, true); !got.equal(bounded) {
			t.Fatalf("MaxLine %d, split at %d:\n%v\nwant:\n%v", maxLine, k, got, bounded)
		}
		// A complete array splits into elements that are each one reply,
		// and that together with the header make up the whole.
		var s ReplyScanner
		if n, err := s.Scan(data); err == nil && data[0] == '*' {
			elems, err := ArrayElements(data[:n], nil)
			if err != nil {
				t.Fatalf("ArrayElements of a scanned array: %v", err)
			}
			total := bytes.IndexByte(data, '\n') + 1 // the header
			for _, e := range elems {
				var es ReplyScanner
				if m, err := es.Scan(e); err != nil || m != len(e) {
					t.Fatalf("element %q: m=%d err=%v", e, m, err)
				}
				total += len(e)
			}
			if total != n {
				t.Fatalf("header and elements make %d bytes, the array %d", total, n)
			}
		}
	})
}
