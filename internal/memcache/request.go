package memcache

import (
	"bytes"
	"math"
)

// Limits memcached 1.6 applies to client requests.
const (
	// MaxKeyLen is KEY_MAX_LENGTH: a longer key is "CLIENT_ERROR bad
	// command line format". It is the only check memcached makes on a key
	// of the text protocol: keys are the words of a line split at spaces,
	// so they hold no ' ' or '\n', but tabs, '\r' and other control bytes
	// are stored as sent.
	MaxKeyLen = 250

	// MaxLineLen is the longest command line, terminator excluded:
	// memcached closes a connection that has buffered more than 2048 bytes
	// without a '\n' (try_read_command_ascii), except for a get or gets
	// line.
	MaxLineLen = 2048

	// MaxGetLineLen bounds a get or gets line, which memcached lets grow
	// without limit; the proxy closes the connection beyond 1 MiB.
	MaxGetLineLen = 1 << 20

	// MaxDataLen is the largest data block length memcached parses
	// (INT_MAX - 2); whether the server stores that much is its own
	// setting (-I, item_size_max).
	MaxDataLen = math.MaxInt32 - 2

	// maxTokens is MAX_TOKENS: memcached splits at most 23 words off a line
	// before it counts tokens (get and gets go on with the rest).
	maxTokens = 24

	// maxLeadingSpaces: memcached exempts a long line from MaxLineLen only
	// if "get " or "gets " starts within the first 101 bytes.
	maxLeadingSpaces = 100
)

// Request is one parsed client request, reused from request to request so
// that parsing allocates nothing in steady state.
//
// The byte slices point into the buffer given to ParseRequest (no copy: the
// caller must not overwrite those bytes while it uses them), except the
// decoded key of a meta request with the b flag, which lives in a scratch
// buffer of the Request. All are valid until the next ParseRequest on the
// same Request, and each has its capacity clipped to its length.
type Request struct {
	Command Command
	Name    []byte   // the command word as sent ("get", "bget", "mg", ...)
	Args    [][]byte // the words after Name, as memcached splits the line
	// Keys holds every key of get, gets, gat and gats (gat with an
	// exptime and no key has none: memcached answers END), the one key of
	// the other keyed commands (for meta commands with the b flag, as sent:
	// base64), and nothing for the rest.
	Keys    [][]byte
	Exptime []byte   // gat, gats, touch: the exptime argument
	Flags   [][]byte // meta: the flag words (after the key; for ms after the data length)
	Opaque  []byte   // meta: the value of the O flag, without the 'O'
	Noreply bool     // classic commands: ends with "noreply"
	Quiet   bool     // meta: the q flag
	Base64  bool     // meta: the b flag; DecodedKey returns the key memcached stores
	Line    []byte   // the command line, with its "\r\n" or "\n"
	Data    []byte   // storage commands and ms: the data block with its "\r\n"

	// Progress of a request that is not complete yet, owned by
	// ParseRequest. Offsets are from the request's first byte, so the
	// caller may move or grow its buffer between calls.
	pending bool // the line is parsed and valid; the data block is awaited
	scan    int  // where the search for the line's '\n' resumes
	lineEnd int  // length of the line, '\n' included
	dataEnd int  // end of the data block and its "\r\n"; 0 without one
	need    int  // see Need

	// What the line parser found, as token indexes (the name is token 0).
	toks       []span // the words of the line
	keys       [2]int // Keys is tokens keys[0] to keys[1]
	flags      int    // Flags is tokens flags to the end; 0 if none
	exptime    int    // token index, or 0
	opaque     int    // token index of the O flag, or 0
	args       [][]byte
	decoded    []byte // scratch: the base64-decoded key
	hasDecoded bool
}

// span locates a word of the line. Positions, not slices, survive the
// caller growing (and so moving) its buffer between calls.
type span struct{ off, end int }

// ParseRequest parses the request at the start of buf into req and returns
// the number of bytes it used.
//
// On ErrIncomplete the request is not complete yet: append more bytes to
// the same unconsumed buffer and call again with it; req remembers how far
// it got, so a large data block arriving in many reads costs O(1) per call
// (see Need). A *ProtocolError says what memcached would do: answer Reply
// (unless Noreply), skip Skip bytes and go on, or Close. After an error
// the fields of req mean nothing.
//
// A command line ends at '\n', with one '\r' before it dropped, as in
// memcached; bytes from a NUL to the end of the line are ignored, as
// memcached's tokenizer stops at the NUL. An empty line is
// ErrUnknownCommand ("ERROR"), as in memcached.
//
// A request that starts with BinaryRequestMagic (0x80) is in memcached's
// binary protocol: once its 24-byte header has arrived, ParseRequest
// returns a *ProtocolError for ErrBinaryProtocol with Close, whose reply
// is a binary error response. memcached picks the protocol once per
// connection, from its first byte; the parser looks at the first byte of
// every request, having no notion of a connection. The two differ only
// where memcached would take the bytes after a malformed request for a
// text command line starting with 0x80, which it answers "ERROR": the
// client has lost track of its replies by then, and a close serves it
// better.
func ParseRequest(buf []byte, req *Request) (n int, err error) {
	req.need = 0
	if !req.pending {
		req.clearFields()
		if len(buf) > 0 && buf[0] == BinaryRequestMagic {
			return 0, req.binaryRequest(buf)
		}
		end, err := req.findLine(buf)
		if err != nil {
			return 0, err
		}
		req.scan = 0
		req.lineEnd = end
		req.dataEnd = 0
		if perr := req.parseLine(buf[:end]); perr != nil {
			return 0, perr
		}
		if req.dataEnd == 0 {
			req.build(buf)
			return end, nil
		}
		req.pending = true
	}
	if len(buf) < req.dataEnd {
		req.need = req.dataEnd - len(buf)
		return 0, ErrIncomplete
	}
	req.pending = false
	end := req.dataEnd
	if buf[end-2] != '\r' || buf[end-1] != '\n' {
		// complete_nread_ascii: the data block has been read, and is
		// dropped; ms always reports the error, even with q.
		return 0, lineError(ErrBadDataChunk, replyBadDataChunk, end, req.Noreply)
	}
	req.build(buf)
	return end, nil
}

// Need returns, after ParseRequest returned ErrIncomplete, how many more
// bytes must be appended before ParseRequest can complete the request or
// make progress: the rest of the data block once the command line is read
// (a caller can size one read by it, or refuse a block larger than it
// wants to buffer), the rest of a binary request's 24-byte header, else 1.
// It returns 0 when no request is in progress.
func (req *Request) Need() int { return req.need }

// DecodedKey returns the key memcached stores for the request, which is
// what the proxy must hash: for a meta command with the b flag the
// base64-decoded key, else Keys[0]; nil without a key. For get and gets,
// hash each of Keys.
func (req *Request) DecodedKey() []byte {
	if req.hasDecoded {
		return req.decoded
	}
	if len(req.Keys) > 0 {
		return req.Keys[0]
	}
	return nil
}

// Forget drops the references the last parsed request holds into the
// caller's buffer (Name, Args, Keys, Line, Data and the rest), so that a
// large buffer can be freed while the Request is kept for the next one. A
// partly parsed request is not forgotten: its progress is kept as offsets,
// and the caller may go on with the same bytes in another buffer.
func (req *Request) Forget() {
	clear(req.args)
	req.args = req.args[:0]
	req.Name, req.Args, req.Keys, req.Flags = nil, nil, nil, nil
	req.Exptime, req.Opaque, req.Line, req.Data = nil, nil, nil, nil
}

// Reset forgets a partly parsed request and drops buffers grown by an
// unusually large one (a get of thousands of keys), e.g. when the
// connection is recycled.
func (req *Request) Reset() {
	const keep = 1024
	if cap(req.toks) > keep {
		req.toks = nil
	}
	if cap(req.args) > keep {
		req.args = nil
	}
	req.clearFields()
	req.pending = false
	req.scan = 0
	req.need = 0
}

// clearFields empties the fields before a new request. Clearing the words
// drops the previous request's references to its buffer, which may be
// large and which the caller may want collected. Field by field: assigning
// a whole Request costs a quarter of a small request's parse.
func (req *Request) clearFields() {
	clear(req.args)
	req.args = req.args[:0]
	req.Command = Unknown
	req.Name, req.Args, req.Keys, req.Flags = nil, nil, nil, nil
	req.Exptime, req.Opaque, req.Line, req.Data = nil, nil, nil, nil
	req.Noreply, req.Quiet, req.Base64, req.hasDecoded = false, false, false, false
	req.keys, req.flags, req.exptime, req.opaque = [2]int{}, 0, 0, 0
	req.dataEnd = 0
}

// findLine returns the length of the line at the start of buf, '\n'
// included. memcached closes a connection once it has buffered more than
// MaxLineLen bytes without a '\n' (MaxGetLineLen for get and gets), which
// depends on how its reads split the bytes; the parser instead limits the
// line itself, so that its answer does not: at most MaxLineLen bytes before
// the "\r\n" (or "\n"). That is what memcached accepts whenever the line's
// terminator arrives in one piece.
func (req *Request) findLine(buf []byte) (int, error) {
	if end, ok := req.searchLine(buf, MaxLineLen); ok {
		return end, nil
	}
	if !lineTooLong(buf, MaxLineLen) {
		req.need = 1
		return 0, ErrIncomplete
	}
	if !isMultigetLine(buf) {
		req.scan = 0
		return 0, &ProtocolError{Reply: replyLineTooLong, Close: true, Err: ErrLineTooLong}
	}
	if end, ok := req.searchLine(buf, MaxGetLineLen); ok {
		return end, nil
	}
	if lineTooLong(buf, MaxGetLineLen) {
		req.scan = 0
		return 0, &ProtocolError{Reply: replyLineTooLong, Close: true, Err: ErrLineTooLong}
	}
	req.need = 1
	return 0, ErrIncomplete
}

// searchLine looks for the '\n' of a line of at most limit bytes before
// its terminator, from where the previous search stopped, and returns the
// length of the line with its '\n'.
func (req *Request) searchLine(buf []byte, limit int) (int, bool) {
	end := min(len(buf), limit+2)
	if req.scan >= end {
		return 0, false
	}
	i := bytes.IndexByte(buf[req.scan:end], '\n')
	if i < 0 {
		req.scan = end
		return 0, false
	}
	i += req.scan
	if i == limit+1 && buf[limit] != '\r' {
		return 0, false // limit+1 bytes before a bare '\n'
	}
	return i + 1, true
}

// lineTooLong reports whether buf, holding no acceptable end of line, has
// more than limit bytes of a line already: limit+1 bytes, unless the last
// of them is a '\r' that a '\n' may still follow.
func lineTooLong(buf []byte, limit int) bool {
	return len(buf) > limit+1 || (len(buf) == limit+1 && buf[limit] != '\r')
}

// isMultigetLine reports whether memcached lets the line at the start of
// buf grow past MaxLineLen: at most 100 spaces, then "get " or "gets ".
func isMultigetLine(buf []byte) bool {
	i := 0
	for i < len(buf) && buf[i] == ' ' {
		i++
	}
	if i > maxLeadingSpaces {
		return false
	}
	return bytes.HasPrefix(buf[i:], []byte("get ")) || bytes.HasPrefix(buf[i:], []byte("gets "))
}

// lineContent returns the part of a line that memcached tokenizes: without
// its '\n', without a '\r' before that unless the '\r' is the only byte,
// and up to the first NUL.
func lineContent(line []byte) []byte {
	c := line[:len(line)-1]
	if len(c) > 1 && c[len(c)-1] == '\r' {
		c = c[:len(c)-1]
	}
	if i := bytes.IndexByte(c, 0); i >= 0 {
		c = c[:i]
	}
	return c
}

// tokenize splits the line content at spaces, as tokenize_command does,
// into req.toks. A plain loop: words are short, and a call per word to
// bytes.IndexByte costs more than it saves.
func (req *Request) tokenize(content []byte) {
	toks := req.toks[:0]
	start := -1
	for i, c := range content {
		if c == ' ' {
			if start >= 0 {
				toks = append(toks, span{start, i})
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		toks = append(toks, span{start, len(content)})
	}
	req.toks = toks
}

// tok returns word i of the line.
func (req *Request) tok(line []byte, i int) []byte {
	s := req.toks[i]
	return line[s.off:s.end]
}

// parseLine checks the command line as memcached's process_command_ascii
// would, and records where the words the proxy needs are.
func (req *Request) parseLine(line []byte) *ProtocolError {
	req.tokenize(lineContent(line))
	n := len(req.toks)
	if n == 0 || req.toks[0].end-req.toks[0].off < 2 {
		return lineError(ErrUnknownCommand, replyError, len(line), false)
	}
	// ntokens as memcached counts: at most 23 words, plus the terminal
	// pseudo-token.
	nt := min(n, maxTokens-1) + 1
	c := lookup(req.tok(line, 0))
	if c == Unknown {
		return lineError(ErrUnknownCommand, replyError, len(line), false)
	}
	info := &commands[c]
	if nt < info.minTok || (info.maxTok > 0 && nt > info.maxTok) {
		return lineError(ErrTokenCount, replyError, len(line), false)
	}
	req.Command = c
	if info.noreply && (c != Delete || nt > 3) {
		req.Noreply = string(req.tok(line, nt-2)) == "noreply"
	}
	switch info.class {
	case classRetrieval:
		return req.checkKeys(line, 1)
	case classTouchGet:
		req.exptime = 1
		if _, ok := safeStrtol(req.tok(line, 1)); !ok {
			return req.lineErr(line, replyBadExptime)
		}
		return req.checkKeys(line, 2)
	case classStorage:
		return req.parseStorage(line, info.cas)
	case classArith:
		req.keys = [2]int{1, 2}
		if req.keyTooLong(line, 1) {
			return req.lineErr(line, replyBadFormat)
		}
		if _, ok := safeStrtoull(req.tok(line, 2)); !ok {
			return req.lineErr(line, replyBadDelta)
		}
	case classTouch:
		req.keys = [2]int{1, 2}
		req.exptime = 2
		if req.keyTooLong(line, 1) {
			return req.lineErr(line, replyBadFormat)
		}
		if _, ok := safeStrtol(req.tok(line, 2)); !ok {
			return req.lineErr(line, replyBadExptime)
		}
	case classDelete:
		req.keys = [2]int{1, 2}
		if nt > 3 {
			// process_delete_command: an old "hold time" of 0 is allowed
			// before noreply, nothing else.
			hold0 := string(req.tok(line, 2)) == "0"
			if !(nt == 4 && (hold0 || req.Noreply)) && !(nt == 5 && hold0 && req.Noreply) {
				return req.lineErr(line, replyDeleteUsage)
			}
		}
		if req.keyTooLong(line, 1) {
			return req.lineErr(line, replyBadFormat)
		}
	case classMeta, classMetaSet, classMetaDebug:
		return req.parseMeta(line, nt, info.class)
	case classVerbosity:
		if _, ok := safeStrtoul(req.tok(line, 1)); !ok {
			return req.lineErr(line, replyBadFormat)
		}
	case classFlushAll:
		want := 2
		if req.Noreply {
			want = 3
		}
		if nt != want {
			if _, ok := safeStrtol(req.tok(line, 1)); !ok {
				return req.lineErr(line, replyBadExptime)
			}
		}
	case classMemlimit:
		if _, ok := safeStrtoul(req.tok(line, 1)); !ok {
			return req.lineErr(line, replyError)
		}
	}
	return nil
}

// lineErr is a CLIENT_ERROR (or ERROR) for the line, silenced by noreply.
func (req *Request) lineErr(line []byte, reply string) *ProtocolError {
	return lineError(ErrBadCommand, reply, len(line), req.Noreply)
}

// keyTooLong reports whether word i is longer than MaxKeyLen.
func (req *Request) keyTooLong(line []byte, i int) bool {
	s := req.toks[i]
	return s.end-s.off > MaxKeyLen
}

// checkKeys records words from..end as the keys of a retrieval command and
// checks their length. memcached answers a get with one key too long with
// that error alone, whatever the other keys found.
func (req *Request) checkKeys(line []byte, from int) *ProtocolError {
	req.keys = [2]int{from, len(req.toks)}
	for i := from; i < len(req.toks); i++ {
		if req.keyTooLong(line, i) {
			return req.lineErr(line, replyBadFormat)
		}
	}
	return nil
}

// parseStorage checks the line of set, add, replace, append, prepend and
// cas as process_update_command does, and sets where the data block ends.
func (req *Request) parseStorage(line []byte, cas bool) *ProtocolError {
	req.keys = [2]int{1, 2}
	if req.keyTooLong(line, 1) {
		return req.lineErr(line, replyBadFormat)
	}
	_, okFlags := safeStrtoul(req.tok(line, 2))
	_, okExp := safeStrtol(req.tok(line, 3))
	vlen, okLen := safeStrtol(req.tok(line, 4))
	if !okFlags || !okExp || !okLen {
		return req.lineErr(line, replyBadFormat)
	}
	if cas {
		if _, ok := safeStrtoull(req.tok(line, 5)); !ok {
			return req.lineErr(line, replyBadFormat)
		}
	}
	if vlen < 0 || vlen > MaxDataLen {
		return req.lineErr(line, replyBadFormat)
	}
	req.dataEnd = len(line) + int(vlen) + 2
	return nil
}

// build sets the exported fields from the recorded positions once the
// request is complete.
func (req *Request) build(buf []byte) {
	args := req.args[:0]
	for _, s := range req.toks {
		args = append(args, buf[s.off:s.end:s.end])
	}
	req.args = args
	req.Name = args[0]
	req.Args = args[1:]
	if req.keys[1] > req.keys[0] {
		req.Keys = args[req.keys[0]:req.keys[1]:req.keys[1]]
	}
	if req.exptime > 0 {
		req.Exptime = args[req.exptime]
	}
	if req.flags > 0 && req.flags < len(args) {
		req.Flags = args[req.flags:]
	}
	if req.opaque > 0 {
		req.Opaque = args[req.opaque][1:]
	}
	req.Line = buf[:req.lineEnd:req.lineEnd]
	if req.dataEnd > 0 {
		req.Data = buf[req.lineEnd:req.dataEnd:req.dataEnd]
	}
}
