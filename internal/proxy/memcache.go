package proxy

import "bytes"

// memcacheProtocol serves a Memcached pool. The memcached data path is not
// built yet: every request line is answered with a SERVER_ERROR saying so.
type memcacheProtocol struct{}

func newMemcacheProtocol(*Pool) *memcacheProtocol { return &memcacheProtocol{} }

func (memcacheProtocol) prelude() [][]byte { return nil }

func (memcacheProtocol) appendError(dst []byte, msg string) []byte {
	dst = append(dst, "SERVER_ERROR "...)
	dst = append(dst, msg...)
	return append(dst, "\r\n"...)
}

func (memcacheProtocol) newReplyParser() replyParser { return memcacheReplyParser{} }

type memcacheReplyParser struct{}

func (memcacheReplyParser) scan(buf []byte, _ *request) (int, error) {
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		return 0, errIncomplete
	}
	return i + 1, nil
}

func (mp memcacheProtocol) handle(s *session, data []byte) int {
	off := 0
	for {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			return off
		}
		off += i + 1
		r := s.newRequest()
		s.replyError(r, "shardproxy: the memcached data path is not implemented in this build")
	}
}
