package resp

import (
	"errors"
	"fmt"
)

// ErrIncomplete means the buffer ends before the message does: read more
// bytes, append them, and call again.
var ErrIncomplete = errors.New("resp: incomplete")

// ErrNotArray is returned by ArrayElements for a reply that is not an array.
var ErrNotArray = errors.New("resp: reply is not an array")

// ProtocolError is a malformed message. For a client request, Msg is the
// text Redis 7 puts after "Protocol error: " (src/networking.c); Redis
// replies "-ERR Protocol error: <Msg>" and closes the connection, and so
// should the proxy. For a server reply the stream can no longer be framed,
// so the backend connection has to be dropped.
type ProtocolError struct {
	Msg string
}

func (e *ProtocolError) Error() string { return "Protocol error: " + e.Msg }

// The fixed protocol errors are values, so the error path allocates nothing
// either. They are never modified.
var (
	errInvalidMultibulkLen = &ProtocolError{"invalid multibulk length"}
	errInvalidBulkLen      = &ProtocolError{"invalid bulk length"}
	errUnbalancedQuotes    = &ProtocolError{"unbalanced quotes in request"}
	errTooBigInline        = &ProtocolError{"too big inline request"}
	errTooBigMbulkCount    = &ProtocolError{"too big mbulk count string"}
	errTooBigBulkCount     = &ProtocolError{"too big bulk count string"}

	errReplyBulkLen  = &ProtocolError{"invalid bulk length in reply"}
	errReplyArrayLen = &ProtocolError{"invalid multibulk length in reply"}
	errReplyBulkCRLF = &ProtocolError{"expected CRLF after bulk in reply"}
	errReplyLineCRLF = &ProtocolError{"expected CRLF at end of line in reply"}
	errReplyTooMany  = &ProtocolError{"too many elements in reply"}
	errReplyLineLong = &ProtocolError{"line too long in reply"}
)

// expectedDollar is Redis's "expected '$', got '%c'". Redis formats it with
// addReplyErrorFormat, which turns '\r' and '\n' into spaces so that the
// error line stays one line; the byte is otherwise printed raw.
func expectedDollar(c byte) error {
	if c == '\r' || c == '\n' {
		c = ' '
	}
	return &ProtocolError{Msg: "expected '$', got '" + string([]byte{c}) + "'"}
}

// unknownReplyType reports a reply that starts with a byte that is not a
// RESP2 type (+ - : $ *). RESP3 types land here too: the proxy never sends
// HELLO 3, so a server never has a reason to use them.
func unknownReplyType(c byte) error {
	return &ProtocolError{Msg: fmt.Sprintf("unknown reply type %q", c)}
}
