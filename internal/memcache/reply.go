package memcache

import "bytes"

// Limits on server replies: far above anything memcached sends, low
// enough that a broken or hostile server cannot make the proxy buffer
// without end before the framing error shows.
const (
	// maxReplyLine bounds one reply line (a VALUE header holds a key of at
	// most 250 bytes and three numbers; a STAT line is shorter).
	maxReplyLine = 64 << 10
	// maxReplyData bounds the length in a VALUE or VA line.
	maxReplyData = 1 << 40
)

// The framing errors of server replies are values, so the error path
// allocates nothing. They are never modified.
var (
	errReplyCRLF     = badReply("reply line does not end in CRLF")
	errReplyLineLong = badReply("reply line too long")
	errReplyDataCRLF = badReply("data block not followed by CRLF")
	errReplyValue    = badReply("bad VALUE line in reply")
	errReplyVA       = badReply("bad VA line in reply")
	errReplyUnknown  = badReply("unexpected line in retrieval reply")
	errReplyTrailing = badReply("bytes after END in reply")
)

// ReplyScanner finds where one server reply ends. The proxy forwards
// replies as raw bytes, and only looks inside the retrieval replies it
// merges (ValueBlocks).
//
// The zero value is ready to use. Between calls that return ErrIncomplete
// it remembers how far it scanned, so a large VALUE block arriving in many
// reads is jumped over, not rescanned; after a complete reply (or an
// error) it resets itself.
type ReplyScanner struct {
	pos     int // bytes of the reply already scanned (complete lines and blocks)
	scan    int // where the search for the current line's '\n' resumes
	dataEnd int // end of the data block being read, "\r\n" included; 0 if none
	need    int // see Need
}

// Scan returns the length of the reply that starts at buf[0] to a request
// of command c, or ErrIncomplete if buf ends before it does, or a
// *ProtocolError (wrapping ErrBadReply) if the reply cannot be framed: the
// server connection must then be closed.
//
// The framing depends on the command:
//   - get, gets, gat, gats: VALUE blocks ("VALUE <key> <flags> <bytes>
//     [<cas>]\r\n<data>\r\n"), then "END\r\n";
//   - mg, ma: "VA <len> <flags>*\r\n<data>\r\n", or one line (HD, EN, NF,
//     NS, EX, ...);
//   - stats: STAT (ITEM, PREFIX) lines, then "END\r\n"; or one line;
//   - everything else: one line (STORED, DELETED, a number, VERSION, HD,
//     MN, ME ..., ...).
//
// An error line (ERROR, CLIENT_ERROR ..., SERVER_ERROR ...) is a complete
// reply to any command; in a retrieval reply it also ends the VALUE
// blocks before it (see IsErrorReply).
//
// Until a reply completes, each call must pass a buffer starting at the
// same reply, with at least the bytes passed before, and the same c.
// Lines must end in "\r\n" and data blocks be followed by "\r\n": a server
// that breaks framing is broken, and guessing would send one client's data
// to another.
func (s *ReplyScanner) Scan(buf []byte, c Command) (n int, err error) {
	kind := replyLine
	if c < numCommands {
		kind = commands[c].reply
	}
	for {
		if s.dataEnd > 0 {
			end := s.dataEnd
			if end > len(buf) {
				s.need = end - len(buf)
				return 0, ErrIncomplete
			}
			if buf[end-2] != '\r' || buf[end-1] != '\n' {
				s.Reset()
				return 0, errReplyDataCRLF
			}
			s.pos, s.scan, s.dataEnd = end, end, 0
			if kind == replyMetaVA {
				return s.done()
			}
			continue
		}
		line, err := s.line(buf)
		if err != nil {
			return 0, err
		}
		next := s.pos + len(line)
		switch kind {
		case replyValues:
			switch {
			case bytes.HasPrefix(line, []byte("VALUE ")):
				l, ok := valueLength(line)
				if !ok {
					s.Reset()
					return 0, errReplyValue
				}
				s.dataEnd = next + l + 2
			case string(line) == "END\r\n" || isErrorLine(line):
				s.pos = next
				return s.done()
			default:
				s.Reset()
				return 0, errReplyUnknown
			}
		case replyMetaVA:
			if bytes.HasPrefix(line, []byte("VA ")) {
				l, ok := vaLength(line)
				if !ok {
					s.Reset()
					return 0, errReplyVA
				}
				s.dataEnd = next + l + 2
			} else {
				s.pos = next
				return s.done()
			}
		case replyStats:
			if !(bytes.HasPrefix(line, []byte("STAT ")) || bytes.HasPrefix(line, []byte("ITEM ")) ||
				bytes.HasPrefix(line, []byte("PREFIX "))) {
				// END, or a one-line reply (RESET, OK, ERROR, ...).
				s.pos = next
				return s.done()
			}
		default:
			s.pos = next
			return s.done()
		}
		s.pos, s.scan = next, next
	}
}

// line returns the line at s.pos, "\r\n" included.
func (s *ReplyScanner) line(buf []byte) ([]byte, error) {
	p := s.pos
	from := max(s.scan, p)
	limit := min(len(buf), p+maxReplyLine)
	if from < limit {
		if i := bytes.IndexByte(buf[from:limit], '\n'); i >= 0 {
			i += from
			if i == p || buf[i-1] != '\r' {
				s.Reset()
				return nil, errReplyCRLF
			}
			return buf[p : i+1], nil
		}
	}
	if len(buf)-p >= maxReplyLine {
		s.Reset()
		return nil, errReplyLineLong
	}
	s.scan = max(from, len(buf))
	s.need = 1
	return nil, ErrIncomplete
}

// done returns the reply's length and resets the scanner.
func (s *ReplyScanner) done() (int, error) {
	n := s.pos
	s.Reset()
	return n, nil
}

// Need returns, after Scan returned ErrIncomplete, how many more bytes must
// arrive before Scan can make progress: the rest of a data block when one
// is being read, else 1.
func (s *ReplyScanner) Need() int { return s.need }

// Reset forgets a partly scanned reply, e.g. when the connection it came
// from is closed.
func (s *ReplyScanner) Reset() { *s = ReplyScanner{} }

// valueLength returns the <bytes> of "VALUE <key> <flags> <bytes>
// [<cas>]\r\n". The key holds no space (memcached's keys are words), but
// may hold any other byte, '\r' included.
func valueLength(line []byte) (int, bool) {
	var w [6][]byte
	n := words(line[:len(line)-2], w[:])
	if n != 4 && n != 5 {
		return 0, false
	}
	return parseReplyUint(w[3], maxReplyData)
}

// vaLength returns the <len> of "VA <len> <flags>*\r\n".
func vaLength(line []byte) (int, bool) {
	var w [2][]byte
	if words(line[:len(line)-2], w[:]) < 2 {
		return 0, false
	}
	return parseReplyUint(w[1], maxReplyData)
}

// words splits b at single spaces into dst and returns how many words b
// has (counting past len(dst)). Server replies separate words by one
// space; an empty word makes the count wrong on purpose.
func words(b []byte, dst [][]byte) int {
	n := 0
	for {
		i := bytes.IndexByte(b, ' ')
		if i < 0 {
			if n < len(dst) {
				dst[n] = b
			}
			return n + 1
		}
		if n < len(dst) {
			dst[n] = b[:i]
		}
		if i == 0 {
			return -1
		}
		n++
		b = b[i+1:]
	}
}

// isErrorLine reports whether line is one of memcached's error lines:
// "ERROR" (also "ERROR <text>" and "ERROR: <text>", as some server-wide
// commands write it), "CLIENT_ERROR <text>" or "SERVER_ERROR <text>".
func isErrorLine(line []byte) bool {
	return bytes.HasPrefix(line, []byte("ERROR")) ||
		bytes.HasPrefix(line, []byte("CLIENT_ERROR")) ||
		bytes.HasPrefix(line, []byte("SERVER_ERROR"))
}

// IsErrorReply reports whether a complete reply (as Scan framed it) is an
// error: its first line is ERROR, CLIENT_ERROR or SERVER_ERROR, or, for a
// retrieval reply, its last line is, after some VALUE blocks. A merged
// multi-get with such a fragment has failed as a whole.
func IsErrorReply(reply []byte) bool {
	if isErrorLine(reply) {
		return true
	}
	if !bytes.HasPrefix(reply, []byte("VALUE ")) || len(reply) < 2 {
		return false
	}
	// The last line of a retrieval reply follows the "\r\n" of a data
	// block and holds no '\n' itself.
	i := bytes.LastIndexByte(reply[:len(reply)-1], '\n')
	return isErrorLine(reply[i+1:])
}

// ValueBlocks calls fn for each "VALUE <key> <flags> <bytes> [<cas>]\r\n
// <data>\r\n" block of a complete retrieval reply, with the key and the
// whole block (header and data) as subslices of reply, in the order the
// server sent them. The proxy merges the fragments of a multi-get by
// appending the blocks in the client's key order, then one "END\r\n".
//
// It returns nil if the reply ends in END, ErrErrorReply if it ends in an
// error line (fn has then been called for the blocks before it), and a
// *ProtocolError if reply is not a well-formed retrieval reply (or
// ErrIncomplete if it is cut short).
func ValueBlocks(reply []byte, fn func(key, block []byte)) error {
	p := 0
	for {
		i := bytes.IndexByte(reply[p:], '\n')
		if i < 0 {
			return ErrIncomplete
		}
		line := reply[p : p+i+1]
		if i == 0 || line[i-1] != '\r' {
			return errReplyCRLF
		}
		switch {
		case bytes.HasPrefix(line, []byte("VALUE ")):
			l, ok := valueLength(line)
			if !ok {
				return errReplyValue
			}
			end := p + len(line) + l + 2
			if end > len(reply) || end < p {
				return ErrIncomplete
			}
			if reply[end-2] != '\r' || reply[end-1] != '\n' {
				return errReplyDataCRLF
			}
			key := line[len("VALUE "):]
			key = key[:bytes.IndexByte(key, ' ')]
			fn(key[:len(key):len(key)], reply[p:end:end])
			p = end
		case string(line) == "END\r\n":
			if p+len(line) != len(reply) {
				return errReplyTrailing
			}
			return nil
		case isErrorLine(line):
			return ErrErrorReply
		default:
			return errReplyUnknown
		}
	}
}
