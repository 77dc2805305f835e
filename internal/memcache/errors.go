package memcache

import "errors"

// ErrIncomplete means the buffer ends before the message does: read more
// bytes, append them, and call again.
var ErrIncomplete = errors.New("memcache: incomplete")

// The kinds of protocol error. A *ProtocolError wraps exactly one of them,
// so that errors.Is(err, ErrUnknownCommand) and the like work; what to send
// the client is in the ProtocolError itself.
var (
	// ErrUnknownCommand: a command word memcached does not know, or an
	// empty line. memcached answers "ERROR".
	ErrUnknownCommand = errors.New("memcache: unknown command")
	// ErrTokenCount: a known command with a number of tokens memcached does
	// not accept. memcached answers "ERROR" here too.
	ErrTokenCount = errors.New("memcache: wrong number of tokens")
	// ErrBadCommand: a command line memcached rejects with a CLIENT_ERROR
	// (a key over 250 bytes, a bad number, a bad meta flag, ...).
	ErrBadCommand = errors.New("memcache: bad command line")
	// ErrBadDataChunk: a storage command's data block is not followed by
	// "\r\n".
	ErrBadDataChunk = errors.New("memcache: bad data chunk")
	// ErrLineTooLong: a command line longer than MaxLineLen (MaxGetLineLen
	// for get and gets); the connection has to be closed.
	ErrLineTooLong = errors.New("memcache: line too long")
	// ErrBinaryProtocol: a request in memcached's binary protocol, which
	// the proxy does not serve; the connection has to be closed, after a
	// binary error response (see AppendBinaryError).
	ErrBinaryProtocol = errors.New("memcache: binary protocol request")
	// ErrBadReply: a server reply that cannot be framed; the server
	// connection has to be closed.
	ErrBadReply = errors.New("memcache: malformed reply")
	// ErrErrorReply is returned by ValueBlocks for a retrieval reply that
	// ends in an error line instead of END.
	ErrErrorReply = errors.New("memcache: error reply")
)

// ProtocolError is a malformed request (or, wrapping ErrBadReply, a
// malformed server reply).
//
// For a request it says what memcached 1.6 itself does with that input, so
// that a client sees the same through the proxy as talking to memcached:
// answer Reply (unless Noreply), drop Skip bytes from the start of the
// buffer, and parse on; or, with Close, give up on the connection.
type ProtocolError struct {
	// Reply is memcached's answer without "\r\n", e.g. "ERROR",
	// "CLIENT_ERROR bad command line format" or "CLIENT_ERROR bad data
	// chunk". With Close it is the proxy's own message (memcached closes
	// without a word): "CLIENT_ERROR line too long". For ErrBinaryProtocol
	// it is the body of the binary error response AppendReply makes.
	Reply string
	// Skip is how many bytes memcached consumes before it reads the next
	// command: the bad line, plus for a storage command the data block it
	// read (bad data chunk) or swallows (meta set errors found after the
	// data length was read). Skip may exceed the bytes passed to
	// ParseRequest when memcached swallows a data block that has not
	// arrived yet: the caller then discards the rest as it arrives. 0 with
	// Close.
	Skip int
	// Noreply is set when the request asked for noreply before memcached
	// found the error: memcached then sends nothing, not even the error.
	Noreply bool
	// Close is set when the stream cannot be resynchronised.
	Close bool
	// Err is the kind of error: ErrUnknownCommand, ErrTokenCount,
	// ErrBadCommand, ErrBadDataChunk, ErrLineTooLong, ErrBinaryProtocol or
	// ErrBadReply.
	Err error

	// binaryHeader is the request's header, for ErrBinaryProtocol: the
	// response echoes its opcode and opaque.
	binaryHeader [BinaryHeaderLen]byte
}

func (e *ProtocolError) Error() string { return e.Err.Error() + ": " + e.Reply }

// Unwrap returns the kind of error, for errors.Is.
func (e *ProtocolError) Unwrap() error { return e.Err }

// AppendReply appends the line to send the client, "<Reply>\r\n", or
// nothing when memcached would stay silent (Noreply); for a binary request
// (ErrBinaryProtocol), a binary error response with Reply as its body.
func (e *ProtocolError) AppendReply(dst []byte) []byte {
	if e.Noreply {
		return dst
	}
	if e.Err == ErrBinaryProtocol {
		return AppendBinaryError(dst, e.binaryHeader[:], e.Reply)
	}
	return AppendLine(dst, e.Reply)
}

// memcached's error lines, as proto_text.c writes them.
const (
	replyError          = "ERROR"
	replyBadFormat      = "CLIENT_ERROR bad command line format"
	replyBadDataChunk   = "CLIENT_ERROR bad data chunk"
	replyBadExptime     = "CLIENT_ERROR invalid exptime argument"
	replyBadDelta       = "CLIENT_ERROR invalid numeric delta argument"
	replyDeleteUsage    = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"
	replyLineTooLong    = "CLIENT_ERROR line too long" // the proxy's words: memcached just closes
	replyInvalidFlag    = "CLIENT_ERROR invalid flag"
	replyDuplicateFlag  = "CLIENT_ERROR duplicate flag"
	replyBadToken       = "CLIENT_ERROR bad token in command line format"
	replyDecodeKey      = "CLIENT_ERROR error decoding key"
	replyMLength        = "CLIENT_ERROR incorrect length for M token"
	replyBadInitial     = "CLIENT_ERROR invalid numeric initial value"
	replyBadDeltaValue  = "CLIENT_ERROR invalid numeric delta value"
	replyOpaqueTooLong  = "CLIENT_ERROR opaque token too long"
	replyMgFlagsTooLong = "CLIENT_ERROR options flags are too long" // mg says "are"
	replyFlagsTooLong   = "CLIENT_ERROR options flags too long"     // ms, md, ma do not
	replyInvalidOrDup   = "CLIENT_ERROR invalid or duplicate flag"
	replyMsMode         = "CLIENT_ERROR invalid mode for ms M token"
	replyMaMode         = "CLIENT_ERROR invalid mode for ma M token"
)

// lineError returns the error for a bad command line of length skip.
func lineError(kind error, reply string, skip int, noreply bool) *ProtocolError {
	return &ProtocolError{Reply: reply, Skip: skip, Noreply: noreply, Err: kind}
}

// badReply returns the error for a server reply that cannot be framed.
func badReply(what string) *ProtocolError {
	return &ProtocolError{Reply: "SERVER_ERROR " + what, Close: true, Err: ErrBadReply}
}
