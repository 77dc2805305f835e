package memcache

import "encoding/binary"

// memcached's binary protocol (protocol_binary.h), which the proxy does not
// serve: it only recognises a binary request, so that a binary client
// (memjs, the usual Node client) fails at once with a clear error instead
// of waiting for its timeout. memcached itself deprecates the binary
// protocol.
const (
	// BinaryRequestMagic is the first byte of every binary request. No
	// text command starts with it.
	BinaryRequestMagic = 0x80
	// BinaryResponseMagic is the first byte of every binary response.
	BinaryResponseMagic = 0x81
	// BinaryHeaderLen is the length of a binary request or response
	// header.
	BinaryHeaderLen = 24
	// BinaryStatusUnknownCommand is the status memcached answers an
	// opcode it does not know with ("Unknown command").
	BinaryStatusUnknownCommand = 0x0081
)

// replyBinaryProtocol is the body of the binary error response: the
// proxy's words, so that the client's error says what is wrong.
const replyBinaryProtocol = "shardproxy serves the memcached ASCII and meta protocols only, not the binary protocol"

// binaryRequest answers a request that starts with the binary magic: it
// waits for the whole 24-byte header (at most 23 more bytes), which is
// what memcached reads before it looks at a binary request, so that the
// error can echo the request's opcode and opaque. Binary clients match a
// response to its request by the opaque (memjs drops a response whose
// opaque it did not send), and every one of them writes the header in one
// piece, so the wait costs nothing in practice.
func (req *Request) binaryRequest(buf []byte) error {
	if len(buf) < BinaryHeaderLen {
		req.need = BinaryHeaderLen - len(buf)
		return ErrIncomplete
	}
	pe := &ProtocolError{Reply: replyBinaryProtocol, Close: true, Err: ErrBinaryProtocol}
	copy(pe.binaryHeader[:], buf)
	return pe
}

// AppendBinaryError appends the binary response memcached sends for an
// opcode it does not know, with msg as its body: magic 0x81, the request's
// opcode, no key, no extras, status 0x0081 ("Unknown command"), a body of
// len(msg) bytes, the request's opaque, CAS 0. header is the request's
// 24-byte header; from a shorter one, what it lacks (the opcode, the
// opaque) is sent as 0.
func AppendBinaryError(dst, header []byte, msg string) []byte {
	var h [BinaryHeaderLen]byte
	h[0] = BinaryResponseMagic
	if len(header) > 1 {
		h[1] = header[1] // opcode
	}
	binary.BigEndian.PutUint16(h[6:8], BinaryStatusUnknownCommand)
	binary.BigEndian.PutUint32(h[8:12], uint32(len(msg)))
	if len(header) >= 16 {
		copy(h[12:16], header[12:16]) // opaque
	}
	dst = append(dst, h[:]...)
	return append(dst, msg...)
}
