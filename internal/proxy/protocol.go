package proxy

import "errors"

// protocol is what differs between a Redis pool and a Memcached pool. It is
// chosen once, when the pool is built; the session and backend machinery
// never switch on the protocol.
type protocol interface {
	// handle parses the complete requests at the start of data and
	// dispatches each through s, returning the bytes consumed. Bytes of an
	// incomplete request are left for the next call. When the stream cannot
	// be resynchronised (or the client said QUIT), handle queues the reply
	// and sets s.stop: the session reads no more and closes once every
	// queued reply is written.
	handle(s *session, data []byte) (n int)
	// newReplyParser returns the parser of one backend connection's replies.
	newReplyParser() replyParser
	// appendError appends a proxy-made error reply, e.g. "-ERR <msg>\r\n".
	appendError(dst []byte, msg string) []byte
	// prelude returns the requests every new backend connection sends
	// before any client request (Redis AUTH and SELECT); their replies are
	// checked and swallowed.
	prelude(db int) [][]byte
	// healthCheck returns the request that probes an ejected server (PING,
	// version) and the request its reply is framed by.
	healthCheck() ([]byte, *request)
}

// replyParser finds where one reply ends in a backend's byte stream.
type replyParser interface {
	// scan returns the length of the complete reply at the start of buf, to
	// the request head (the oldest in flight, nil for an unsolicited reply),
	// or errIncomplete. It may keep progress between calls on a growing buf.
	scan(buf []byte, head *request) (n int, err error)
	// need returns, after scan returned errIncomplete, how many more bytes
	// the reply needs at least: the rest of the bulk or value being read,
	// else 1. The reader sizes its buffer by it and refuses a reply that
	// announces more than max_reply_bytes.
	need() int
}

// errIncomplete says more bytes are needed.
var errIncomplete = errors.New("incomplete")
