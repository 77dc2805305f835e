package sentinel

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/shardproxy/shardproxy/internal/resp"
)

// ErrBadReply is a reply that is valid RESP but not the shape the command
// promises, e.g. a get-master-addr-by-name reply of three elements.
var ErrBadReply = errors.New("unexpected reply")

// ReplyError is an error reply ("-ERR ...") from a Sentinel or a Redis
// server; Msg is the text after the '-'.
type ReplyError struct {
	Msg string
}

func (e *ReplyError) Error() string { return e.Msg }

// replyError returns a *ReplyError if reply is an error reply, else nil.
func replyError(reply []byte) error {
	if !resp.IsError(reply) {
		return nil
	}
	return &ReplyError{Msg: string(bytes.TrimRight(reply[1:], "\r\n"))}
}

// nullArray is Redis 7's RESP2 null array, its reply to
// get-master-addr-by-name for a name it does not monitor.
const nullArray = "*-1\r\n"

// parseMasterAddr reads the reply to SENTINEL get-master-addr-by-name: an
// array [ip, port]. known is false when the Sentinel monitors no master of
// that name: Redis 7 replies with a null array, older Sentinels with a null
// bulk string, and both are accepted.
func parseMasterAddr(reply []byte) (addr string, known bool, err error) {
	if err := replyError(reply); err != nil {
		return "", false, err
	}
	if string(reply) == nullArray || string(reply) == "$-1\r\n" {
		return "", false, nil
	}
	elems, err := resp.ArrayElements(reply, nil)
	if err != nil {
		return "", false, fmt.Errorf("%w to get-master-addr-by-name: %w", ErrBadReply, err)
	}
	if len(elems) != 2 {
		return "", false, fmt.Errorf("%w to get-master-addr-by-name: %d elements, want ip and port", ErrBadReply, len(elems))
	}
	ip, ok1 := bulk(elems[0])
	port, ok2 := bulk(elems[1])
	if !ok1 || !ok2 {
		return "", false, fmt.Errorf("%w to get-master-addr-by-name: ip and port are not bulk strings", ErrBadReply)
	}
	addr, err = joinAddr(ip, port)
	if err != nil {
		return "", false, fmt.Errorf("%w to get-master-addr-by-name: %w", ErrBadReply, err)
	}
	return addr, true, nil
}

// switchMaster is the payload of a +switch-master message.
type switchMaster struct {
	group   string
	oldAddr string // "host:port"
	newAddr string // "host:port"
}

// parseSwitchMaster parses a +switch-master payload,
// "<group> <old-ip> <old-port> <new-ip> <new-port>" (sentinel.c,
// sentinelFailoverSwitchToPromotedSlave). The four address fields are taken
// from the end, so a group name containing spaces survives.
func parseSwitchMaster(payload []byte) (switchMaster, error) {
	var f [4][]byte
	rest := payload
	for i := 3; i >= 0; i-- {
		j := bytes.LastIndexByte(rest, ' ')
		if j < 0 {
			return switchMaster{}, fmt.Errorf("%w: +switch-master %q has fewer than 5 fields", ErrBadReply, payload)
		}
		f[i], rest = rest[j+1:], rest[:j]
	}
	if len(rest) == 0 {
		return switchMaster{}, fmt.Errorf("%w: +switch-master %q has no group name", ErrBadReply, payload)
	}
	oldAddr, err := joinAddr(f[0], f[1])
	if err != nil {
		return switchMaster{}, fmt.Errorf("%w: +switch-master %q: old address: %w", ErrBadReply, payload, err)
	}
	newAddr, err := joinAddr(f[2], f[3])
	if err != nil {
		return switchMaster{}, fmt.Errorf("%w: +switch-master %q: new address: %w", ErrBadReply, payload, err)
	}
	return switchMaster{group: string(rest), oldAddr: oldAddr, newAddr: newAddr}, nil
}

// parseRole returns the first element of a ROLE reply: "master", "slave"
// or "sentinel".
func parseRole(reply []byte) (string, error) {
	if err := replyError(reply); err != nil {
		return "", err
	}
	elems, err := resp.ArrayElements(reply, nil)
	if err != nil {
		return "", fmt.Errorf("%w to ROLE: %w", ErrBadReply, err)
	}
	if len(elems) == 0 {
		return "", fmt.Errorf("%w to ROLE: empty array", ErrBadReply)
	}
	role, ok := bulk(elems[0])
	if !ok {
		return "", fmt.Errorf("%w to ROLE: role is not a bulk string", ErrBadReply)
	}
	return string(role), nil
}

// push is a message on a subscribed connection. In RESP2 every one is an
// array whose first element names its kind: ["subscribe", channel, count],
// ["message", channel, payload], or ["pong", argument] for a PING.
type push struct {
	kind    string // "subscribe", "message", "pong", ...
	channel []byte // subscribe and message
	payload []byte // message: the payload; pong: the PING argument
}

// parsePush decodes a message read on a subscribed connection. Its byte
// slices point into reply.
func parsePush(reply []byte) (push, error) {
	if err := replyError(reply); err != nil {
		return push{}, err
	}
	elems, err := resp.ArrayElements(reply, nil)
	if err != nil {
		return push{}, fmt.Errorf("%w on the subscription: %w", ErrBadReply, err)
	}
	if len(elems) == 0 {
		return push{}, fmt.Errorf("%w on the subscription: empty array", ErrBadReply)
	}
	kind, ok := bulk(elems[0])
	if !ok {
		return push{}, fmt.Errorf("%w on the subscription: kind is not a bulk string", ErrBadReply)
	}
	p := push{kind: string(kind)}
	switch {
	case p.kind == "message" && len(elems) == 3:
		var ok2 bool
		p.channel, ok = bulk(elems[1])
		p.payload, ok2 = bulk(elems[2])
		if !ok || !ok2 {
			return push{}, fmt.Errorf("%w on the subscription: message fields are not bulk strings", ErrBadReply)
		}
	case p.kind == "pong" && len(elems) == 2:
		p.payload, _ = bulk(elems[1])
	case (p.kind == "subscribe" || p.kind == "unsubscribe") && len(elems) == 3:
		p.channel, _ = bulk(elems[1])
	}
	return p, nil
}

// bulk returns the contents of a non-null bulk string reply.
func bulk(reply []byte) ([]byte, bool) {
	v, null, ok := resp.ParseBulk(reply)
	return v, ok && !null
}

// joinAddr makes "host:port" ("[v6]:port") from the fields Sentinel sends,
// checking that the host is made of the characters of an IP address or a
// hostname and the port is a number from 1 to 65535.
func joinAddr(host, port []byte) (string, error) {
	if len(host) == 0 {
		return "", errors.New("empty host")
	}
	// Sentinel sends an IPv4 or IPv6 address or a hostname: any other byte
	// means a garbled reply (found by FuzzParseReplies), not an address.
	for _, c := range host {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '-' || c == '_' || c == ':' || c == '%'
		if !ok {
			return "", fmt.Errorf("invalid host %q", host)
		}
	}
	p, err := strconv.ParseUint(string(port), 10, 16)
	if err != nil || p == 0 {
		return "", fmt.Errorf("invalid port %q", port)
	}
	return net.JoinHostPort(string(host), strconv.FormatUint(p, 10)), nil
}
