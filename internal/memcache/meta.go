package memcache

import "strings"

// Limits of the meta commands (proto_text.c).
const (
	// maxMetaTokens is MFLAG_MAX_OPT_LENGTH: mg, ms, md and ma refuse a
	// line of more than 19 words ("options flags too long").
	maxMetaTokens = 20
	// maxOpaqueLen is MFLAG_MAX_OPAQUE_LENGTH, for the O flag word with
	// its 'O'.
	maxOpaqueLen = 32
)

// parseMeta checks the line of mg, ms, md, ma and me as memcached 1.6.18
// does (process_mget_command and its siblings), in the same order, so that
// a line with several faults gets the same error.
func (req *Request) parseMeta(line []byte, nt int, cl class) *ProtocolError {
	c := req.Command
	req.keys = [2]int{1, 2}
	if cl == classMetaDebug {
		// process_meta_command: no token-count check but this one.
		if nt < 3 || req.keyTooLong(line, 1) {
			return req.lineErr(line, replyBadFormat)
		}
		req.flags = 2
		if nt >= 4 && string(req.tok(line, 2)) == "b" {
			req.Base64 = true
			if !req.decodeKey(line) {
				return req.lineErr(line, replyBadFormat)
			}
		}
		return nil
	}
	if req.keyTooLong(line, 1) {
		return req.lineErr(line, replyBadFormat)
	}
	if c == MetaSet && nt == 3 {
		return req.lineErr(line, replyBadFormat) // no data length
	}
	if nt > maxMetaTokens {
		if c == MetaGet {
			return req.lineErr(line, replyMgFlagsTooLong)
		}
		return req.lineErr(line, replyFlagsTooLong)
	}
	req.flags = 2
	var swallow int // ms: what memcached swallows after an error
	if c == MetaSet {
		vlen, ok := safeStrtol(req.tok(line, 2))
		if !ok || vlen < 0 || vlen > MaxDataLen {
			return req.lineErr(line, replyBadFormat)
		}
		req.flags = 3
		req.dataEnd = len(line) + int(vlen) + 2
		swallow = req.dataEnd
	}
	mode, errReply := req.metaFlags(line)
	if errReply != "" {
		if c == MetaDelete || c == MetaArithmetic {
			errReply = replyInvalidOrDup // they do not pass the reason on
		}
		return req.metaErr(line, errReply, swallow)
	}
	switch c {
	case MetaSet:
		// process_mset_command checks the opaque length, then the mode,
		// then reports the opaque length.
		switch mode {
		case 0, 'E', 'A', 'P', 'R', 'S':
		default:
			return req.metaErr(line, replyMsMode, swallow)
		}
	case MetaArithmetic:
		switch mode {
		case 0, 'I', '+', 'D', '-':
		default:
			return req.metaErr(line, replyMaMode, 0)
		}
	}
	if req.opaque > 0 {
		s := req.toks[req.opaque]
		if s.end-s.off > maxOpaqueLen {
			return req.metaErr(line, replyOpaqueTooLong, swallow)
		}
	}
	return nil
}

// metaErr is an error for a meta line: never silenced by q. For ms after
// its data length was read, memcached swallows the data block
// (conn_swallow) without looking at it, so Skip covers it.
func (req *Request) metaErr(line []byte, reply string, swallow int) *ProtocolError {
	req.dataEnd = 0
	return lineError(ErrBadCommand, reply, max(len(line), swallow), false)
}

// metaFlags reads the flag words as _meta_flag_preparse does: a flag is the
// first byte of a word; a repeated flag (or a byte >= 127) stops at once
// with "duplicate flag", an unknown one with "invalid flag"; a bad value
// is remembered and the scan goes on, so the last bad value names the
// error. It returns the M mode byte, and the error reply or "".
func (req *Request) metaFlags(line []byte) (mode byte, errReply string) {
	var seen [128]bool
	failed := false
	errReply = replyBadFormat
	for i := req.flags; i < len(req.toks); i++ {
		w := req.tok(line, i)
		f := w[0]
		if f >= 127 || seen[f] {
			return 0, replyDuplicateFlag
		}
		seen[f] = true
		switch f {
		case 'b':
			req.Base64 = true
			if !req.decodeKey(line) {
				errReply, failed = replyDecodeKey, true
			}
		case 'N', 'T', 'R':
			if _, ok := safeStrtol(w[1:]); !ok {
				errReply, failed = replyBadToken, true
			}
		case 'C':
			if _, ok := safeStrtoull(w[1:]); !ok {
				errReply, failed = replyBadToken, true
			}
		case 'F':
			if _, ok := safeStrtoul(w[1:]); !ok {
				failed = true // and the message stays what it was
			}
		case 'M':
			if len(w) != 2 {
				errReply, failed = replyMLength, true
			} else {
				mode = w[1]
			}
		case 'J':
			if _, ok := safeStrtoull(w[1:]); !ok {
				errReply, failed = replyBadInitial, true
			}
		case 'D':
			if _, ok := safeStrtoull(w[1:]); !ok {
				errReply, failed = replyBadDeltaValue, true
			}
		case 'O':
			req.opaque = i
		case 'q':
			req.Quiet = true
		case 'I', 'k', 'l', 'L', 'P', 's', 't', 'c', 'f', 'v', 'h', 'u':
		default:
			return 0, replyInvalidFlag
		}
	}
	if failed {
		return mode, errReply
	}
	return mode, ""
}

// decodeKey base64-decodes the key (word 1) into req.decoded.
func (req *Request) decodeKey(line []byte) bool {
	var ok bool
	req.decoded, ok = base64Decode(req.decoded[:0], req.tok(line, 1))
	req.hasDecoded = ok
	return ok
}

// base64Values maps a byte to its value in base64, '=' to 0, and every
// other byte to invalid (0x80), as memcached's dtable does.
var base64Values = func() (t [256]byte) {
	for i := range t {
		t[i] = 0x80
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := range len(alphabet) {
		t[alphabet[i]] = byte(i)
	}
	t['='] = 0
	return t
}()

// base64Decode appends src decoded to dst with the rules of memcached's
// base64_decode (base64.c), which are looser than RFC 4648's: bytes outside
// the alphabet are skipped, the bytes left (with '=') must be a non-zero
// multiple of 4, and decoding stops after the first group with padding.
// It reports false where memcached would fail ("error decoding key").
func base64Decode(dst, src []byte) ([]byte, bool) {
	count := 0
	for _, c := range src {
		if base64Values[c] != 0x80 {
			count++
		}
	}
	if count == 0 || count%4 != 0 {
		return dst, false
	}
	start := len(dst)
	var block [4]byte
	n, pad := 0, 0
	for _, c := range src {
		v := base64Values[c]
		if v == 0x80 {
			continue
		}
		if c == '=' {
			pad++
		}
		block[n] = v
		n++
		if n < 4 {
			continue
		}
		dst = append(dst, block[0]<<2|block[1]>>4, block[1]<<4|block[2]>>2, block[2]<<6|block[3])
		n = 0
		if pad > 0 {
			if pad > 2 {
				return dst[:start], false
			}
			dst = dst[:len(dst)-pad]
			break
		}
	}
	return dst, len(dst) > start
}

// StripQuiet appends line to dst without the q flag of a meta command
// (mg, ms, md, ma), and unchanged for any other line. The proxy forwards
// meta requests without q, so that every request gets exactly one reply
// to match, and drops itself the replies q would have hidden (see
// QuietSuppressed). line is a command line as in Request.Line; the word
// and the space before it are removed, everything else is kept as sent.
func StripQuiet(dst, line []byte) []byte {
	if len(line) == 0 || line[len(line)-1] != '\n' {
		return append(dst, line...)
	}
	content := lineContent(line)
	// Find the words: the command, the key, for ms the data length, and
	// then the flags, the first byte of each naming it.
	word, flagsFrom := 0, 2
	start := -1
	for i := 0; i <= len(content); i++ {
		if i < len(content) && content[i] != ' ' {
			if start < 0 {
				start = i
			}
			continue
		}
		if start < 0 {
			continue
		}
		w := content[start:i]
		switch {
		case word == 0:
			if len(w) != 2 || w[0] != 'm' || strings.IndexByte("gsda", w[1]) < 0 {
				return append(dst, line...)
			}
			if w[1] == 's' {
				flagsFrom = 3
			}
		case word >= flagsFrom && w[0] == 'q':
			// Drop the word with the spaces before it.
			from := start
			for from > 0 && content[from-1] == ' ' {
				from--
			}
			if from > 0 && content[from-1] == '\r' && from < start {
				// A word ending in '\r' (memcached allows one in a key)
				// must not meet the line's end: "ma \r q\n" would become
				// "ma \r\n", a line without the key. Keep one space.
				from++
			}
			dst = append(dst, line[:from]...)
			return append(dst, line[i:]...)
		}
		word++
		start = -1
	}
	return append(dst, line...)
}

// QuietSuppressed reports whether memcached 1.6 would not have sent reply
// to a meta request of command c with the q flag: mg hides EN (a miss);
// ms and md hide HD (success); ma hides HD and VA (success). Errors and
// the other codes (NS, EX, NF, ...) are always sent. "OK" is HD under
// memcached's -o meta_response_old.
//
// One case cannot be told from the reply: ma with q and N (autovivify)
// shows the HD of an item it had to create; the proxy, which sees only HD,
// hides it like the HD of an existing one.
func QuietSuppressed(c Command, reply []byte) bool {
	if len(reply) < 3 || (reply[2] != ' ' && reply[2] != '\r') {
		return false
	}
	code := string(reply[:2])
	switch c {
	case MetaGet:
		return code == "EN"
	case MetaSet, MetaDelete:
		return code == "HD" || code == "OK"
	case MetaArithmetic:
		return code == "HD" || code == "OK" || code == "VA"
	}
	return false
}
