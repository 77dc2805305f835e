package resp

import "bytes"

// Limits on client requests, the values Redis uses.
const (
	// MaxInlineLen is PROTO_INLINE_MAX_SIZE: the longest inline command, and
	// the longest multibulk header line ("*<count>" or "$<len>"), that Redis
	// buffers while waiting for its line terminator.
	MaxInlineLen = 64 * 1024

	// MaxBulkLen is the default proto-max-bulk-len (512 MiB): the largest
	// argument a client may send.
	MaxBulkLen = 512 * 1024 * 1024

	// MaxMultibulkLen is the largest argument count. Redis 7 accepts up to
	// INT_MAX; the proxy keeps the 1024*1024 limit of Redis 6 and earlier so
	// that a client cannot make it reserve space for billions of arguments.
	MaxMultibulkLen = 1024 * 1024
)

// Request is one parsed client command, reused from request to request so
// that parsing allocates nothing in steady state.
//
// Args hold the command name and its arguments. For a multibulk request
// each is a subslice of the buffer given to ParseRequest (no copy: the
// caller must not overwrite those bytes while it uses Args); for an inline
// request they point into a scratch buffer owned by the Request, since
// quotes and escapes have to be undone. Either way they are valid until the
// next ParseRequest on the same Request. Each has its capacity clipped to
// its length, so appending to one never writes over its neighbour.
type Request struct {
	Args   [][]byte
	Inline bool // the request used the inline protocol ("PING\r\n")

	// Progress of a request that is not complete yet, owned by
	// ParseRequest. Offsets are from the request's first byte, so the
	// caller may move or grow its buffer between calls.
	pending bool   // the fields below describe a partly parsed request
	pos     int    // next byte to parse
	scan    int    // where the search for the current line's end resumes
	left    int    // multibulk: arguments still to read; -1 before the header
	bulk    int    // multibulk: length of the argument whose header is read, or -1
	need    int    // see Need
	spans   []span // multibulk: the arguments read so far
	scratch []byte // inline: unescaped arguments
}

// span locates an argument in the request's bytes. Positions, not slices,
// survive the caller growing (and so moving) its buffer between calls.
type span struct{ off, len int }

// ParseRequest parses the request at the start of buf into req and returns
// the number of bytes it used.
//
// On ErrIncomplete the request is not complete yet: append more bytes to
// the unconsumed buffer and call again with it; req remembers how far it
// got, so each call only looks at bytes it has not seen (see Need). A
// *ProtocolError means the stream is malformed; its text is Redis's, and
// the connection cannot be resynchronised.
//
// Like Redis (processInputBuffer), ParseRequest skips empty requests (a
// blank inline line, "*0\r\n", "*-1\r\n") and never returns one. Skipped
// bytes are counted in n, also when the call then returns ErrIncomplete: a
// caller that always drops buf[:n] keeps a client that sends nothing but
// newlines from growing its buffer. A caller that ignores n on
// ErrIncomplete still gets correct results (the parse restarts).
//
// Cost: a complete request costs O(its header bytes + number of arguments);
// bulk contents are never scanned, only jumped over. A request arriving in
// k reads costs O(k) more in total, as each call resumes where the previous
// stopped: a 64 MiB value in 16 KiB reads, or a million arguments in 4 KiB
// reads, is parsed in linear time.
func ParseRequest(buf []byte, req *Request) (n int, err error) {
	start := 0
	for {
		m, err := req.parse(buf[start:])
		switch {
		case err == ErrIncomplete:
			if start > 0 {
				// Progress is relative to buf[start:], which the caller
				// may or may not pass next time: start over to be safe.
				req.pending = false
			}
			return start, err
		case err != nil:
			req.pending = false
			req.need = 0
			return 0, err
		}
		req.need = 0
		start += m
		if len(req.Args) > 0 {
			return start, nil
		}
	}
}

// Need returns, after ParseRequest returned ErrIncomplete, how many more
// bytes must be appended before ParseRequest can complete the request or
// make progress: the rest of a bulk argument when one is being read, else
// 1. A caller can use it to size one read for a large value. It returns 0
// when no request is in progress.
func (req *Request) Need() int { return req.need }

// Forget drops the references the last parsed request holds into the
// caller's buffer (its Args), so that a large buffer can be freed while the
// Request is kept for the next one. A partly parsed request is not
// forgotten: its progress is kept as offsets, and the caller may go on
// with the same bytes in another buffer.
func (req *Request) Forget() {
	clear(req.Args)
	req.Args = req.Args[:0]
}

// Reset forgets a partly parsed request and drops buffers grown by an
// unusually large one, e.g. when the connection is recycled.
func (req *Request) Reset() {
	const keep = 1024
	if cap(req.Args) > keep {
		req.Args = nil
	}
	if cap(req.spans) > keep {
		req.spans = nil
	}
	if cap(req.scratch) > 4*keep {
		req.scratch = nil
	}
	clear(req.Args)
	req.Args = req.Args[:0]
	req.Inline = false
	req.pending = false
	req.need = 0
}

// parse parses one request, possibly empty, from the start of buf.
func (req *Request) parse(buf []byte) (int, error) {
	if !req.pending {
		req.pending = true
		// Clearing drops the previous request's references to its buffer,
		// which may be large and which the caller may want collected.
		clear(req.Args)
		req.Args = req.Args[:0]
		req.Inline = false
		req.pos, req.scan, req.left, req.bulk = 0, 0, -1, -1
		req.spans = req.spans[:0]
	}
	if len(buf) == 0 {
		req.need = 1
		return 0, ErrIncomplete
	}
	var n int
	var err error
	if buf[0] == '*' {
		n, err = req.parseMultibulk(buf)
	} else {
		n, err = req.parseInline(buf)
	}
	if err == nil {
		req.pending = false
	}
	return n, err
}

// parseMultibulk follows processMultibulkBuffer in Redis's networking.c:
// "*<count>\r\n" then count times "$<len>\r\n<len bytes>\r\n".
//
// Like Redis it looks for '\r' to end a header line and then only asks for
// one more byte, which it skips without checking, and it skips the two
// bytes after a bulk without checking that they are "\r\n". A request Redis
// would accept is accepted here and yields the same arguments, so whether
// the proxy forwards raw bytes or re-encoded ones, the server sees the
// command the client meant.
func (req *Request) parseMultibulk(buf []byte) (int, error) {
	if req.left < 0 {
		i, err := req.line(buf, 0, errTooBigMbulkCount)
		if err != nil {
			return 0, err
		}
		count, ok := parseInt(buf[1:i])
		if !ok || count > MaxMultibulkLen {
			return 0, errInvalidMultibulkLen
		}
		req.pos = i + 2
		if count <= 0 {
			// Redis takes "*0" and "*-1" as a request without arguments
			// and skips it.
			return req.pos, nil
		}
		req.left = int(count)
	}
	for req.left > 0 {
		if req.bulk < 0 {
			if err := req.bulkHeader(buf); err != nil {
				return 0, err
			}
		}
		end := req.pos + req.bulk + 2
		if end > len(buf) {
			req.need = end - len(buf)
			return 0, ErrIncomplete
		}
		req.spans = append(req.spans, span{req.pos, req.bulk})
		req.pos = end
		req.bulk = -1
		req.left--
	}
	for _, s := range req.spans {
		req.Args = append(req.Args, buf[s.off:s.off+s.len:s.off+s.len])
	}
	return req.pos, nil
}

// bulkHeader reads the "$<len>\r\n" at req.pos into req.bulk and moves
// req.pos past it.
func (req *Request) bulkHeader(buf []byte) error {
	p := req.pos
	if l, next, ok := shortBulkHeader(buf, p); ok {
		req.bulk, req.pos = l, next
		return nil
	}
	i, err := req.line(buf, p, errTooBigBulkCount)
	if err != nil {
		return err
	}
	if buf[p] != '$' {
		return expectedDollar(buf[p])
	}
	l, ok := parseInt(buf[p+1 : i])
	if !ok || l < 0 || l > MaxBulkLen {
		return errInvalidBulkLen
	}
	req.bulk, req.pos = int(l), i+2
	return nil
}

// shortBulkHeader reads the usual header, "$" and 1 to 9 digits then '\r'
// and one more byte, in a single pass: about a quarter of the time of a
// multi-argument request goes to headers. Anything else (long, odd or
// incomplete) it leaves to the general path, which would give the same
// answer, only more slowly.
func shortBulkHeader(buf []byte, p int) (l, next int, ok bool) {
	if p >= len(buf) || buf[p] != '$' {
		return 0, 0, false
	}
	j := p + 1
	for ; j < len(buf) && j-p <= 9; j++ {
		c := buf[j]
		if c < '0' || c > '9' {
			break
		}
		l = l*10 + int(c-'0')
	}
	digits := j - p - 1
	if digits == 0 || j+1 >= len(buf) || buf[j] != '\r' || (buf[p+1] == '0' && digits > 1) || l > MaxBulkLen {
		return 0, 0, false
	}
	return l, j + 2, true
}

// line finds the '\r' ending the header line that starts at buf[p] and
// returns its index. As in Redis the line is complete once one byte follows
// the '\r'. If no '\r' comes within MaxInlineLen bytes of p, the line is
// too long (tooBig): Redis gives up on a header once more than that is
// buffered without a '\r'. Looking only that far makes the outcome the same
// however the bytes are split across reads.
func (req *Request) line(buf []byte, p int, tooBig error) (int, error) {
	from := max(req.scan, p)
	limit := min(len(buf), p+MaxInlineLen+1)
	i := bytes.IndexByte(buf[from:limit], '\r')
	if i < 0 {
		if len(buf)-p > MaxInlineLen {
			return 0, tooBig
		}
		req.scan = limit
		req.need = 1
		return 0, ErrIncomplete
	}
	i += from
	if i+1 >= len(buf) {
		req.scan = i
		req.need = 1
		return 0, ErrIncomplete
	}
	return i, nil
}
