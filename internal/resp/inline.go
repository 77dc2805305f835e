package resp

import "bytes"

// parseInline follows processInlineBuffer in Redis's networking.c: a
// command is one line ended by '\n' (a '\r' before it is dropped), split
// into arguments the way sdssplitargs (src/sds.c) splits it, which is also
// how redis-cli reads what a user types. Telnet and nc users rely on it.
func (req *Request) parseInline(buf []byte) (int, error) {
	// Redis gives up once more than MaxInlineLen bytes are buffered without
	// a '\n'. Searching only the first MaxInlineLen+1 bytes gives that
	// answer whatever the read boundaries are: a longer line is always an
	// error here, where Redis accepts it if it happens to arrive in one read.
	limit := min(len(buf), MaxInlineLen+1)
	i := bytes.IndexByte(buf[req.scan:limit], '\n')
	if i < 0 {
		if len(buf) > MaxInlineLen {
			return 0, errTooBigInline
		}
		req.scan = limit
		req.need = 1
		return 0, ErrIncomplete
	}
	i += req.scan
	line := buf[:i]
	if i > 0 && line[i-1] == '\r' {
		line = line[:i-1]
	}
	if !req.splitArgs(line) {
		return 0, errUnbalancedQuotes
	}
	req.Inline = len(req.Args) > 0
	return i + 1, nil
}

// splitArgs splits an inline command line into req.Args as sdssplitargs
// does, and reports false for unbalanced quotes:
//
//   - arguments are separated by blanks; leading blanks are any of
//     " \t\r\n\v\f" (C isspace), but only " \t\r\n" end an unquoted word;
//   - "double quotes" take the escapes \n \r \t \b \a \xHH and \<c> for any
//     other c (itself);
//   - 'single quotes' take only \' as an escape;
//   - a quote may open in the middle of a word (a"b c" is "ab c"), but a
//     closing quote must be followed by a blank or the end of the line.
//
// One deliberate difference: sdssplitargs works on a C string and Redis
// finds the newline with strchr, so a NUL byte in an inline command makes
// Redis wait for a newline it never sees until the 64 KiB limit. Here NUL
// is an ordinary byte.
//
// The unescaped words never outgrow the line, so req.scratch is sized once
// and the Args pointing into it stay valid while it is filled.
func (req *Request) splitArgs(line []byte) bool {
	if cap(req.scratch) < len(line) {
		req.scratch = make([]byte, 0, len(line))
	}
	out := req.scratch[:0]
	n := len(line)
	i := 0
	for {
		for i < n && isSpace(line[i]) {
			i++
		}
		if i == n {
			req.scratch = out
			return true
		}
		start := len(out)
		inDouble, inSingle := false, false
	word:
		for {
			switch {
			case inDouble:
				if i == n {
					return false
				}
				c := line[i]
				switch {
				case c == '\\' && i+3 < n && line[i+1] == 'x' && isHex(line[i+2]) && isHex(line[i+3]):
					out = append(out, unhex(line[i+2])<<4|unhex(line[i+3]))
					i += 4
				case c == '\\' && i+1 < n:
					out = append(out, unescape(line[i+1]))
					i += 2
				case c == '"':
					if i+1 < n && !isSpace(line[i+1]) {
						return false
					}
					i++
					break word
				default:
					out = append(out, c)
					i++
				}
			case inSingle:
				if i == n {
					return false
				}
				c := line[i]
				switch {
				case c == '\\' && i+1 < n && line[i+1] == '\'':
					out = append(out, '\'')
					i += 2
				case c == '\'':
					if i+1 < n && !isSpace(line[i+1]) {
						return false
					}
					i++
					break word
				default:
					out = append(out, c)
					i++
				}
			default:
				if i == n {
					break word
				}
				c := line[i]
				i++
				switch c {
				case ' ', '\n', '\r', '\t':
					break word
				case '"':
					inDouble = true
				case '\'':
					inSingle = true
				default:
					out = append(out, c)
				}
			}
		}
		req.Args = append(req.Args, out[start:len(out):len(out)])
	}
}

// isSpace is C's isspace in the "C" locale.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// unescape maps the character after a backslash inside double quotes.
func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
}
