package memcache

import (
	"encoding/binary"
	"errors"
	"testing"
)

// binRequest builds a binary request without extras or value: the 24-byte
// header, then the key.
func binRequest(opcode byte, key string, opaque uint32) string {
	var h [BinaryHeaderLen]byte
	h[0] = BinaryRequestMagic
	h[1] = opcode
	binary.BigEndian.PutUint16(h[2:4], uint16(len(key)))
	binary.BigEndian.PutUint32(h[8:12], uint32(len(key)))
	binary.BigEndian.PutUint32(h[12:16], opaque)
	return string(h[:]) + key
}

// binGet is a binary GET (opcode 0x00) of "foo" with opaque 0xdeadbeef.
var binGet = binRequest(0x00, "foo", 0xdeadbeef)

// binResponse is the response a binary request must get: magic 0x81, the
// opcode, status 0x0081, the body length and the opaque; the rest zero.
func binResponse(opcode byte, opaque uint32, msg string) string {
	var h [BinaryHeaderLen]byte
	h[0] = 0x81
	h[1] = opcode
	h[6], h[7] = 0x00, 0x81
	binary.BigEndian.PutUint32(h[8:12], uint32(len(msg)))
	binary.BigEndian.PutUint32(h[12:16], opaque)
	return string(h[:]) + msg
}

// TestBinaryProtocol: a binary request gets, once its header is in, a
// binary error response that echoes its opcode and opaque, and the
// connection is to be closed.
func TestBinaryProtocol(t *testing.T) {
	const msg = "shardproxy serves the memcached ASCII and meta protocols only, not the binary protocol"
	for _, tc := range []struct {
		name string
		in   string
		want string
	}{
		{"get", binGet, binResponse(0x00, 0xdeadbeef, msg)},
		{"header only", binGet[:BinaryHeaderLen], binResponse(0x00, 0xdeadbeef, msg)},
		// memjs numbers its requests from 1; 10 is a '\n' in the opaque.
		{"set opaque 10", binRequest(0x01, "k", 10) + "extras and value", binResponse(0x01, 10, msg)},
		{"getq opaque with CR LF", binRequest(0x09, "k", 0x0d0a0d0a), binResponse(0x09, 0x0d0a0d0a, msg)},
		{"sasl list mechs", binRequest(0x20, "", 1), binResponse(0x20, 1, msg)},
		{"unknown opcode", binRequest(0xff, "", 0xffffffff), binResponse(0xff, 0xffffffff, msg)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			var req Request
			// Up to the end of the header, it waits, and says for what.
			for k := 1; k < BinaryHeaderLen; k++ {
				n, err := ParseRequest(in[:k], &req)
				if n != 0 || !errors.Is(err, ErrIncomplete) || req.Need() != BinaryHeaderLen-k {
					t.Fatalf("%d bytes: n=%d err=%v Need()=%d", k, n, err, req.Need())
				}
			}
			n, err := ParseRequest(in, &req)
			var pe *ProtocolError
			if n != 0 || !errors.As(err, &pe) || !errors.Is(err, ErrBinaryProtocol) {
				t.Fatalf("n=%d err=%v", n, err)
			}
			if !pe.Close || pe.Skip != 0 || pe.Noreply || pe.Reply != msg {
				t.Fatalf("error %+v", pe)
			}
			if got := string(pe.AppendReply([]byte("before"))); got != "before"+tc.want {
				t.Fatalf("AppendReply:\n got %q\nwant %q", got, "before"+tc.want)
			}
			if got := string(AppendBinaryError(nil, in, msg)); got != tc.want {
				t.Fatalf("AppendBinaryError:\n got %q\nwant %q", got, tc.want)
			}
			if err.Error() != "memcache: binary protocol request: "+msg {
				t.Fatalf("Error() = %q", err.Error())
			}
		})
	}
}

// TestAppendBinaryErrorShortHeader: what a short header lacks is sent as
// zero; nothing panics.
func TestAppendBinaryErrorShortHeader(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   string
	}{
		{"", binResponse(0, 0, "m")},
		{"\x80", binResponse(0, 0, "m")},
		{"\x80\x05", binResponse(0x05, 0, "m")},
		{binRequest(0x05, "", 0xabcdef01)[:15], binResponse(0x05, 0, "m")},
		{binRequest(0x05, "", 0xabcdef01)[:16], binResponse(0x05, 0xabcdef01, "m")},
	} {
		if got := string(AppendBinaryError(nil, []byte(tc.header), "m")); got != tc.want {
			t.Errorf("header %q:\n got %q\nwant %q", tc.header, got, tc.want)
		}
	}
}
