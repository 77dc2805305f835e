package resp

import (
	"bytes"
	"math"
)

// maxReplyLen bounds a length or count in a reply: far above anything a
// server sends, low enough that adding it to a position cannot overflow.
const maxReplyLen = math.MaxInt / 4

// ReplyScanner finds where one RESP2 reply ends in a server's stream. The
// proxy forwards replies as raw bytes, so it only needs their boundaries.
//
// It keeps no stack: to find the end of a reply it is enough to count the
// elements still expected, since an array header of count c turns one
// expected element into c. Deep nesting (a million levels) costs nothing
// more than the bytes themselves, and nothing recurses.
//
// The zero value is ready to use. Between calls that return ErrIncomplete
// it remembers how far it scanned, so a huge reply arriving in many reads
// is scanned once; after a complete reply (or an error) it resets itself.
type ReplyScanner struct {
	// MaxLine, when positive, bounds a line (a simple string, an error, an
	// integer, a bulk or array header), "\r\n" included: a longer line is
	// a *ProtocolError as soon as MaxLine bytes have arrived without its
	// end. A line has no length prefix, so without a bound a server
	// sending bytes without "\r\n" would be buffered for ever. 0 means no
	// bound. Reset keeps it.
	MaxLine int

	pos     int   // bytes of the reply already scanned
	left    int64 // elements still expected; 0 before the reply starts
	scan    int   // where the search for the current line's '\n' resumes
	bulkEnd int   // end of the bulk being read, after its "\r\n"; 0 if none
	need    int   // see Need
}

// Scan returns the length of the reply that starts at buf[0], or
// ErrIncomplete if buf ends before it does, or a *ProtocolError if it is
// not valid RESP2 (the stream cannot be framed any more).
//
// Until a reply completes, each call must pass a buffer starting at the
// same reply, with at least the bytes passed before: the scan resumes where
// the previous call stopped. Bulk contents are jumped over, not read.
//
// Lines must end in "\r\n" and bulks be followed by "\r\n": unlike a
// client, a server that breaks framing is broken, and guessing would send
// one client's data to another.
func (s *ReplyScanner) Scan(buf []byte) (n int, err error) {
	if s.left == 0 {
		s.left = 1
	}
	for {
		if s.bulkEnd > 0 {
			end := s.bulkEnd
			if end > len(buf) {
				s.need = end - len(buf)
				return 0, ErrIncomplete
			}
			if buf[end-2] != '\r' || buf[end-1] != '\n' {
				s.Reset()
				return 0, errReplyBulkCRLF
			}
			s.pos, s.scan, s.bulkEnd = end, end, 0
			s.left--
		} else {
			p := s.pos
			if p >= len(buf) {
				s.need = 1
				return 0, ErrIncomplete
			}
			from := max(s.scan, p+1)
			limit := len(buf)
			if s.MaxLine > 0 {
				limit = min(limit, p+s.MaxLine)
			}
			i := -1
			if from < limit {
				i = bytes.IndexByte(buf[from:limit], '\n')
			}
			if i < 0 {
				if s.MaxLine > 0 && len(buf)-p >= s.MaxLine {
					s.Reset()
					return 0, errReplyLineLong
				}
				s.scan = len(buf)
				s.need = 1
				return 0, ErrIncomplete
			}
			i += from
			if buf[i-1] != '\r' {
				s.Reset()
				return 0, errReplyLineCRLF
			}
			next := i + 1
			switch buf[p] {
			case '+', '-', ':':
				s.left--
			case '$':
				l, ok := parseInt(buf[p+1 : i-1])
				switch {
				case !ok || l < -1 || l > maxReplyLen:
					s.Reset()
					return 0, errReplyBulkLen
				case l == -1:
					s.left--
				default:
					s.bulkEnd = next + int(l) + 2
				}
			case '*':
				c, ok := parseInt(buf[p+1 : i-1])
				switch {
				case !ok || c < -1 || c > maxReplyLen:
					s.Reset()
					return 0, errReplyArrayLen
				case c <= 0:
					s.left--
				case s.left > math.MaxInt64-c:
					s.Reset()
					return 0, errReplyTooMany
				default:
					s.left += c - 1
				}
			default:
				c := buf[p]
				s.Reset()
				return 0, unknownReplyType(c)
			}
			s.pos, s.scan = next, next
		}
		if s.left == 0 {
			n := s.pos
			s.Reset()
			return n, nil
		}
	}
}

// Need returns, after Scan returned ErrIncomplete, how many more bytes must
// arrive before Scan can make progress: the rest of a bulk when one is being
// read, else 1. The buffer passed to Scan plus Need bytes is therefore a
// lower bound on the reply's size, exact when the reply is one bulk: a
// reader can grow its buffer to that size at once instead of doubling it,
// and refuse a reply that announces more than it is willing to hold.
func (s *ReplyScanner) Need() int { return s.need }

// Reset forgets a partly scanned reply, e.g. when the connection it came
// from is closed. MaxLine is kept.
func (s *ReplyScanner) Reset() { *s = ReplyScanner{MaxLine: s.MaxLine} }

// ReplyType returns the type byte of a reply ('+', '-', ':', '$' or '*'),
// or 0 for an empty slice.
func ReplyType(reply []byte) byte {
	if len(reply) == 0 {
		return 0
	}
	return reply[0]
}

// IsError reports whether reply is an error reply ("-ERR ...").
func IsError(reply []byte) bool { return len(reply) > 0 && reply[0] == '-' }

// ParseInteger returns the value of an integer reply ":<n>\r\n", as the
// proxy needs to sum the fragments of DEL, UNLINK, TOUCH or EXISTS. It
// reports false for anything else, including trailing bytes.
func ParseInteger(reply []byte) (int64, bool) {
	if len(reply) < 4 || reply[0] != ':' || reply[len(reply)-2] != '\r' || reply[len(reply)-1] != '\n' {
		return 0, false
	}
	return parseInt(reply[1 : len(reply)-2])
}

// ParseBulk returns the contents of a bulk reply "$<len>\r\n<bytes>\r\n"
// (a subslice of reply) with ok true, or null true for "$-1\r\n". It
// reports ok false for anything else, including trailing bytes.
func ParseBulk(reply []byte) (value []byte, null, ok bool) {
	if len(reply) < 4 || reply[0] != '$' {
		return nil, false, false
	}
	i := bytes.IndexByte(reply, '\r')
	if i < 0 || i+1 >= len(reply) || reply[i+1] != '\n' {
		return nil, false, false
	}
	l, valid := parseInt(reply[1:i])
	switch {
	case !valid || l < -1:
		return nil, false, false
	case l == -1:
		return nil, i+2 == len(reply), i+2 == len(reply)
	case int64(len(reply)-i-4) != l || reply[len(reply)-2] != '\r' || reply[len(reply)-1] != '\n':
		return nil, false, false
	}
	return reply[i+2 : len(reply)-2 : len(reply)-2], false, true
}

// ArrayElements appends to dst[:0] the elements of the array reply at the
// start of reply, each a complete reply (nested arrays included) as a
// subslice of reply, and returns it. The proxy uses it to merge MGET
// fragments back in key order. A null or empty array has no elements.
// Bytes after the array are ignored. It returns ErrNotArray if reply is not
// an array, ErrIncomplete if reply ends inside it, or a *ProtocolError.
func ArrayElements(reply []byte, dst [][]byte) ([][]byte, error) {
	dst = dst[:0]
	if len(reply) == 0 {
		return dst, ErrIncomplete
	}
	if reply[0] != '*' {
		return dst, ErrNotArray
	}
	i := bytes.IndexByte(reply, '\n')
	if i < 0 {
		return dst, ErrIncomplete
	}
	if reply[i-1] != '\r' {
		return dst, errReplyLineCRLF
	}
	c, ok := parseInt(reply[1 : i-1])
	if !ok || c < -1 || c > maxReplyLen {
		return dst, errReplyArrayLen
	}
	p := i + 1
	var s ReplyScanner
	for ; c > 0; c-- {
		n, err := s.Scan(reply[p:])
		if err != nil {
			return dst, err
		}
		dst = append(dst, reply[p:p+n:p+n])
		p += n
	}
	return dst, nil
}
