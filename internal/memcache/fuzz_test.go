package memcache

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
	f.Add([]byte("get a b\r\nset k 0 0 1 noreply\r\nx\r\nms eA== 2 b q T1\r\nhi\r\nmg k v q\r\nbogus\r\n"), uint16(17))
	// A binary request after text ones, cut inside its header.
	f.Add([]byte("get a\r\nmn\r\n"+binRequest(0x01, "k", 0x0a0d0a0d)+"extras and value"), uint16(20))
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		// One buffer, request after request.
		var req Request
		buf := data
		for len(buf) > 0 {
			n, err := ParseRequest(buf, &req)
			if n < 0 || n > len(buf) {
				t.Fatalf("n = %d for %d bytes", n, len(buf))
			}
			var pe *ProtocolError
			switch {
			case errors.Is(err, ErrIncomplete):
				if n != 0 || req.Need() < 1 {
					t.Fatalf("ErrIncomplete with n=%d Need()=%d", n, req.Need())
				}
				return
			case errors.As(err, &pe):
				if n != 0 || pe.Reply == "" || (pe.Close != (pe.Skip == 0)) {
					t.Fatalf("bad error %+v (n=%d)", pe, n)
				}
				if errors.Is(err, ErrBinaryProtocol) {
					// The response echoes the request's opcode and opaque.
					r := pe.AppendReply(nil)
					if !pe.Close || buf[0] != BinaryRequestMagic || len(r) != BinaryHeaderLen+len(pe.Reply) ||
						r[0] != BinaryResponseMagic || r[1] != buf[1] || string(r[12:16]) != string(buf[12:16]) {
						t.Fatalf("binary request %q: error %+v, response %q", buf[:min(len(buf), BinaryHeaderLen)], pe, r)
					}
				}
				if pe.Close || pe.Skip > len(buf) {
					buf = nil
				} else {
					buf = buf[pe.Skip:]
				}
				continue
			case err != nil:
				t.Fatalf("unexpected error %v", err)
			}
			checkRequestSlices(t, &req, buf[:n])
			checkRebuilt(t, &req)
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

// checkRebuilt: what the proxy builds from a request parses back to it: a
// retrieval fragment of all its keys, and a meta line without q.
func checkRebuilt(t *testing.T, req *Request) {
	t.Helper()
	var out []byte
	switch {
	case req.Command.IsRetrieval() && req.Exptime != nil:
		out = AppendGat(nil, req.Name, req.Exptime, req.Keys...)
	case req.Command.IsRetrieval() && len(req.Keys) > 0:
		out = AppendGet(nil, req.Name, req.Keys...)
	case req.Quiet:
		out = append(StripQuiet(nil, req.Line), req.Data...)
	default:
		return
	}
	want := describe(req)
	if req.Quiet {
		var flags [][]byte
		for _, f := range req.Flags {
			if f[0] != 'q' {
				flags = append(flags, f)
			}
		}
		saved := req.Flags
		req.Quiet, req.Flags = false, flags
		want = describe(req)
		req.Quiet, req.Flags = true, saved
	}
	var again Request
	n, err := ParseRequest(out, &again)
	if err != nil || n != len(out) || describe(&again) != want {
		t.Fatalf("rebuilt %q: n=%d err=%v\n%s\nwant\n%s", out, n, err, describe(&again), want)
	}
}

func FuzzScanReply(f *testing.F) {
	for _, tc := range replyCases() {
		if len(tc.in) < 1024 {
			f.Add([]byte(tc.in), uint16(len(tc.in)/2), uint8(tc.cmd))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint16, c uint8) {
		cmd := Command(c % uint8(numCommands))
		want := feedReplies(t, data, cmd, nil, false)
		k := int(cut) % (len(data) + 1)
		if got := feedReplies(t, data, cmd, []int{k}, true); got != want {
			t.Fatalf("split at %d: %s, want %s", k, got, want)
		}
		if len(data) <= 4096 {
			if got := feedReplies(t, data, cmd, everyByte(len(data)), false); got != want {
				t.Fatalf("byte by byte: %s, want %s", got, want)
			}
		}
		// A complete retrieval reply splits into blocks that, with END,
		// make up the whole; or it is an error reply.
		var s ReplyScanner
		n, err := s.Scan(data, cmd)
		if err != nil || !cmd.IsRetrieval() {
			return
		}
		reply := data[:n]
		var blocks []byte
		err = ValueBlocks(reply, func(key, block []byte) {
			if !bytes.HasPrefix(block, append([]byte("VALUE "), key...)) {
				t.Fatalf("block %q for key %q", block, key)
			}
			blocks = append(blocks, block...)
		})
		switch {
		case IsErrorReply(reply):
			if !errors.Is(err, ErrErrorReply) {
				t.Fatalf("error reply %q: ValueBlocks %v", reply, err)
			}
		case err != nil || string(blocks)+"END\r\n" != string(reply):
			t.Fatalf("reply %q: ValueBlocks %v, blocks %q", reply, err, blocks)
		}
	})
}
