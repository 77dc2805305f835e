package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// RedisError is an error reply, such as "ERR unknown command" (without
// the leading '-').
type RedisError string

func (e RedisError) Error() string { return string(e) }

// doTimeout bounds RedisDo's dial and its replies.
const doTimeout = 2 * time.Second

// RedisDo sends one command to the Redis server or Sentinel at addr, after
// AUTH auth if auth is not empty, on a connection of its own, and returns
// the decoded reply: a string for a simple or bulk string, an int64, nil
// for a null, a []any for an array. An error reply is returned as a
// RedisError. Everything happens within a few seconds.
//
// It is a setup tool for tests, kept here rather than taken from
// internal/resp or a client library so that servers are set up and
// inspected by code other than the code under test.
func RedisDo(addr, auth string, args ...string) (any, error) {
	c, err := net.DialTimeout(addrNetwork(addr), addr, doTimeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(doTimeout)); err != nil {
		return nil, err
	}
	var req []byte
	if auth != "" {
		req = appendCommand(req, "AUTH", auth)
	}
	req = appendCommand(req, args...)
	if _, err := c.Write(req); err != nil {
		return nil, err
	}
	r := bufio.NewReader(c)
	if auth != "" {
		if _, err := readValue(r); err != nil {
			return nil, fmt.Errorf("AUTH: %w", err)
		}
	}
	return readValue(r)
}

// appendCommand appends args as a RESP array of bulk strings.
func appendCommand(dst []byte, args ...string) []byte {
	dst = fmt.Appendf(dst, "*%d\r\n", len(args))
	for _, a := range args {
		dst = fmt.Appendf(dst, "$%d\r\n%s\r\n", len(a), a)
	}
	return dst
}

// readValue reads and decodes one RESP2 reply. An error reply is returned
// as a RedisError, after the rest of an enclosing array has been read.
func readValue(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || !strings.HasSuffix(line, "\r\n") {
		return nil, fmt.Errorf("bad reply line %q", line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, RedisError(body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return nil, fmt.Errorf("bad bulk length %q", line)
		}
		if n == -1 {
			return nil, nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		return string(b[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return nil, fmt.Errorf("bad array length %q", line)
		}
		if n == -1 {
			return nil, nil
		}
		elems := make([]any, 0, n)
		var firstErr error
		for range n {
			v, err := readValue(r)
			var re RedisError
			switch {
			case errors.As(err, &re):
				firstErr = cmpOr(firstErr, err)
			case err != nil:
				return nil, err
			}
			elems = append(elems, v)
		}
		return elems, firstErr
	}
	return nil, fmt.Errorf("unknown reply type %q", line)
}

// cmpOr returns a if it is not nil, else b.
func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// fieldMap turns a flat array of names and values, as in the replies of
// SENTINEL replicas and SENTINEL sentinels, into a map.
func fieldMap(v any) map[string]string {
	arr, _ := v.([]any)
	m := make(map[string]string, len(arr)/2)
	for i := 0; i+1 < len(arr); i += 2 {
		k, _ := arr[i].(string)
		val, _ := arr[i+1].(string)
		m[k] = val
	}
	return m
}
