package resp

import (
	"strconv"
	"strings"
)

// The Append functions encode RESP2 like strconv.Append*: they append to
// dst and return the extended slice, allocating only when dst must grow.

// AppendArrayHeader appends "*<n>\r\n", the header of an array of n
// elements (which the caller appends next).
func AppendArrayHeader(dst []byte, n int) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, '\r', '\n')
}

// AppendNullArray appends "*-1\r\n".
func AppendNullArray(dst []byte) []byte { return append(dst, "*-1\r\n"...) }

// AppendBulk appends b as a bulk string. Any bytes are allowed, "\r\n"
// included: the length prefix frames them.
func AppendBulk(dst []byte, b []byte) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, b...)
	return append(dst, '\r', '\n')
}

// AppendBulkString appends s as a bulk string.
func AppendBulkString(dst []byte, s string) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}

// AppendNullBulk appends "$-1\r\n", the reply for a missing key.
func AppendNullBulk(dst []byte) []byte { return append(dst, "$-1\r\n"...) }

// AppendInteger appends ":<n>\r\n".
func AppendInteger(dst []byte, n int64) []byte {
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, '\r', '\n')
}

// AppendError appends an error reply: msg without the leading '-', e.g.
// AppendError(dst, "ERR unknown command"). As Redis's addReplyErrorFormat
// does, any '\r' or '\n' in msg becomes a space, so a message built from
// client input cannot end the line early and inject a reply.
func AppendError(dst []byte, msg string) []byte {
	dst = append(dst, '-')
	dst = appendLine(dst, msg)
	return append(dst, '\r', '\n')
}

// AppendSimple appends a simple string reply such as "+OK\r\n" for s "OK";
// '\r' and '\n' in s become spaces, as in AppendError.
func AppendSimple(dst []byte, s string) []byte {
	dst = append(dst, '+')
	dst = appendLine(dst, s)
	return append(dst, '\r', '\n')
}

// appendLine appends s with '\r' and '\n' replaced by spaces.
func appendLine(dst []byte, s string) []byte {
	if strings.IndexByte(s, '\r') < 0 && strings.IndexByte(s, '\n') < 0 {
		return append(dst, s...)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		dst = append(dst, c)
	}
	return dst
}

// AppendCommand appends a command in the multibulk form every Redis
// accepts: an array of bulk strings. The proxy uses it to build the
// per-server fragments of a multi-key command (MGET k1 k3) and the AUTH and
// SELECT it sends on a new backend connection.
func AppendCommand(dst []byte, args ...[]byte) []byte {
	dst = AppendArrayHeader(dst, len(args))
	for _, a := range args {
		dst = AppendBulk(dst, a)
	}
	return dst
}
