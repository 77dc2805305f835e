package memcache

import "strings"

// The Append functions encode requests and replies like strconv.Append*:
// they append to dst and return the extended slice, allocating only when
// dst must grow.

// AppendGet appends a retrieval command for some keys, "<name> <key>*\r\n":
// the fragment of a get or gets for one server. name is the client's
// command word (Request.Name).
func AppendGet(dst, name []byte, keys ...[]byte) []byte {
	dst = append(dst, name...)
	for _, k := range keys {
		dst = append(dst, ' ')
		dst = append(dst, k...)
	}
	return append(dst, '\r', '\n')
}

// AppendGat appends "<name> <exptime> <key>*\r\n": the fragment of a gat or
// gats for one server, with the client's exptime (Request.Exptime).
func AppendGat(dst, name, exptime []byte, keys ...[]byte) []byte {
	dst = append(dst, name...)
	dst = append(dst, ' ')
	dst = append(dst, exptime...)
	for _, k := range keys {
		dst = append(dst, ' ')
		dst = append(dst, k...)
	}
	return append(dst, '\r', '\n')
}

// AppendEnd appends "END\r\n", which closes a merged retrieval reply.
func AppendEnd(dst []byte) []byte { return append(dst, "END\r\n"...) }

// AppendServerError appends "SERVER_ERROR <msg>\r\n", the reply of the
// proxy when a server cannot answer (twemproxy writes strerror(errno):
// "SERVER_ERROR Connection refused").
func AppendServerError(dst []byte, msg string) []byte {
	dst = append(dst, "SERVER_ERROR "...)
	return AppendLine(dst, msg)
}

// AppendLine appends s and "\r\n", with any '\r' or '\n' in s turned into
// a space, so that a message built from client or server input cannot end
// the line early and inject a reply.
func AppendLine(dst []byte, s string) []byte {
	if strings.IndexByte(s, '\r') < 0 && strings.IndexByte(s, '\n') < 0 {
		dst = append(dst, s...)
	} else {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c == '\r' || c == '\n' {
				c = ' '
			}
			dst = append(dst, c)
		}
	}
	return append(dst, '\r', '\n')
}
