package sentinel

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

func TestParseMasterAddr(t *testing.T) {
	for _, tc := range []struct {
		name, reply string
		addr        string
		known       bool
		err         string // "" for none
	}{
		{"ipv4", "*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6379\r\n", "127.0.0.1:6379", true, ""},
		{"ipv6", "*2\r\n$3\r\n::1\r\n$5\r\n16379\r\n", "[::1]:16379", true, ""},
		{"hostname", "*2\r\n$9\r\nredis-a.x\r\n$4\r\n6380\r\n", "redis-a.x:6380", true, ""},
		{"unknown group, redis 7", "*-1\r\n", "", false, ""},
		{"unknown group, null bulk", "$-1\r\n", "", false, ""},
		{"error reply", "-ERR unknown command 'SENTINEL'\r\n", "", false, "ERR unknown command 'SENTINEL'"},
		{"one element", "*1\r\n$9\r\n127.0.0.1\r\n", "", false, "unexpected reply to get-master-addr-by-name: 1 elements, want ip and port"},
		{"three elements", "*3\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\n2\r\n", "", false, "unexpected reply to get-master-addr-by-name: 3 elements, want ip and port"},
		{"empty array", "*0\r\n", "", false, "unexpected reply to get-master-addr-by-name: 0 elements, want ip and port"},
		{"integer port", "*2\r\n$9\r\n127.0.0.1\r\n:6379\r\n", "", false, "unexpected reply to get-master-addr-by-name: ip and port are not bulk strings"},
		{"null ip", "*2\r\n$-1\r\n$4\r\n6379\r\n", "", false, "unexpected reply to get-master-addr-by-name: ip and port are not bulk strings"},
		{"port 0", "*2\r\n$9\r\n127.0.0.1\r\n$1\r\n0\r\n", "", false, `unexpected reply to get-master-addr-by-name: invalid port "0"`},
		{"port too big", "*2\r\n$9\r\n127.0.0.1\r\n$5\r\n65536\r\n", "", false, `unexpected reply to get-master-addr-by-name: invalid port "65536"`},
		{"port not a number", "*2\r\n$9\r\n127.0.0.1\r\n$2\r\nab\r\n", "", false, `unexpected reply to get-master-addr-by-name: invalid port "ab"`},
		{"signed port", "*2\r\n$9\r\n127.0.0.1\r\n$5\r\n+6379\r\n", "", false, `unexpected reply to get-master-addr-by-name: invalid port "+6379"`},
		{"empty ip", "*2\r\n$0\r\n\r\n$4\r\n6379\r\n", "", false, "unexpected reply to get-master-addr-by-name: empty host"},
		{"simple string", "+OK\r\n", "", false, "unexpected reply to get-master-addr-by-name: resp: reply is not an array"},
		{"truncated", "*2\r\n$9\r\n127.0.0.1\r\n", "", false, "unexpected reply to get-master-addr-by-name: resp: incomplete"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, known, err := parseMasterAddr([]byte(tc.reply))
			if addr != tc.addr || known != tc.known || errText(err) != tc.err {
				t.Errorf("parseMasterAddr(%q) = %q, %v, %q; want %q, %v, %q", tc.reply, addr, known, errText(err), tc.addr, tc.known, tc.err)
			}
		})
	}
	var re *ReplyError
	if _, _, err := parseMasterAddr([]byte("-ERR x\r\n")); !errors.As(err, &re) || re.Msg != "ERR x" {
		t.Errorf("error reply: %v, want a *ReplyError", err)
	}
	if _, _, err := parseMasterAddr([]byte("*1\r\n$1\r\na\r\n")); !errors.Is(err, ErrBadReply) {
		t.Errorf("bad shape: %v, want ErrBadReply", err)
	}
}

func TestParseSwitchMaster(t *testing.T) {
	for _, tc := range []struct {
		payload string
		want    switchMaster
		err     string
	}{
		{"mymaster 127.0.0.1 6379 127.0.0.1 6380", switchMaster{"mymaster", "127.0.0.1:6379", "127.0.0.1:6380"}, ""},
		{"g 10.0.0.1 7000 10.0.0.2 7001", switchMaster{"g", "10.0.0.1:7000", "10.0.0.2:7001"}, ""},
		{"g6 ::1 6379 fe80::1 6380", switchMaster{"g6", "[::1]:6379", "[fe80::1]:6380"}, ""},
		// The address fields are read from the end: a name with spaces survives.
		{"my group 127.0.0.1 1 127.0.0.1 2", switchMaster{"my group", "127.0.0.1:1", "127.0.0.1:2"}, ""},
		{"g 127.0.0.1 6379 127.0.0.1", switchMaster{}, `unexpected reply: +switch-master "g 127.0.0.1 6379 127.0.0.1" has fewer than 5 fields`},
		{"", switchMaster{}, `unexpected reply: +switch-master "" has fewer than 5 fields`},
		{" 127.0.0.1 1 127.0.0.1 2", switchMaster{}, `unexpected reply: +switch-master " 127.0.0.1 1 127.0.0.1 2" has no group name`},
		{"g 127.0.0.1 x 127.0.0.1 2", switchMaster{}, `unexpected reply: +switch-master "g 127.0.0.1 x 127.0.0.1 2": old address: invalid port "x"`},
		{"g 127.0.0.1 1 127.0.0.1 99999", switchMaster{}, `unexpected reply: +switch-master "g 127.0.0.1 1 127.0.0.1 99999": new address: invalid port "99999"`},
		{"g 127.0.0.1 1  2", switchMaster{}, `unexpected reply: +switch-master "g 127.0.0.1 1  2": new address: empty host`},
	} {
		got, err := parseSwitchMaster([]byte(tc.payload))
		if got != tc.want || errText(err) != tc.err {
			t.Errorf("parseSwitchMaster(%q) = %+v, %q; want %+v, %q", tc.payload, got, errText(err), tc.want, tc.err)
		}
	}
}

func TestParseRole(t *testing.T) {
	for _, tc := range []struct {
		reply, role, err string
	}{
		{"*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n", "master", ""},
		{"*3\r\n$6\r\nmaster\r\n:3129\r\n*1\r\n*3\r\n$9\r\n127.0.0.1\r\n$4\r\n6380\r\n$4\r\n3129\r\n", "master", ""},
		{"*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6379\r\n$9\r\nconnected\r\n:3129\r\n", "slave", ""},
		{"*2\r\n$8\r\nsentinel\r\n*1\r\n$8\r\nmymaster\r\n", "sentinel", ""},
		{"-NOAUTH Authentication required.\r\n", "", "NOAUTH Authentication required."},
		{"*0\r\n", "", "unexpected reply to ROLE: empty array"},
		{"*1\r\n:1\r\n", "", "unexpected reply to ROLE: role is not a bulk string"},
		{"+master\r\n", "", "unexpected reply to ROLE: resp: reply is not an array"},
	} {
		role, err := parseRole([]byte(tc.reply))
		if role != tc.role || errText(err) != tc.err {
			t.Errorf("parseRole(%q) = %q, %q; want %q, %q", tc.reply, role, errText(err), tc.role, tc.err)
		}
	}
}

func TestParsePush(t *testing.T) {
	for _, tc := range []struct {
		reply                  string
		kind, channel, payload string
		err                    string
	}{
		{"*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n", "subscribe", "+switch-master", "", ""},
		{"*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$11\r\ng a 1 b 2\r\n\r\n", "message", "+switch-master", "g a 1 b 2\r\n", ""},
		{"*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$9\r\ng a 1 b 2\r\n", "message", "+switch-master", "g a 1 b 2", ""},
		{"*2\r\n$4\r\npong\r\n$0\r\n\r\n", "pong", "", "", ""},
		{"*2\r\n$4\r\npong\r\n$2\r\nhi\r\n", "pong", "", "hi", ""},
		{"*3\r\n$7\r\nmessage\r\n:1\r\n$1\r\nx\r\n", "", "", "", "unexpected reply on the subscription: message fields are not bulk strings"},
		{"*1\r\n$8\r\npmessage\r\n", "pmessage", "", "", ""},
		{"-ERR only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed\r\n", "", "", "", "ERR only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed"},
		{"*0\r\n", "", "", "", "unexpected reply on the subscription: empty array"},
		{"*1\r\n:1\r\n", "", "", "", "unexpected reply on the subscription: kind is not a bulk string"},
		{"+PONG\r\n", "", "", "", "unexpected reply on the subscription: resp: reply is not an array"},
	} {
		p, err := parsePush([]byte(tc.reply))
		if p.kind != tc.kind || string(p.channel) != tc.channel || string(p.payload) != tc.payload || errText(err) != tc.err {
			t.Errorf("parsePush(%q) = {%q %q %q}, %q; want {%q %q %q}, %q", tc.reply,
				p.kind, p.channel, p.payload, errText(err), tc.kind, tc.channel, tc.payload, tc.err)
		}
	}
}

func TestClientName(t *testing.T) {
	for pool, want := range map[string]string{
		"alpha":       "shardproxy-alpha",
		"":            "shardproxy-",
		"a b\nc":      "shardproxy-a_b_c",
		"caf\u00e9":   "shardproxy-caf__",
		"x:y/z-1.2_3": "shardproxy-x:y/z-1.2_3",
	} {
		if got := clientName(pool); got != want {
			t.Errorf("clientName(%q) = %q, want %q", pool, got, want)
		}
	}
}

// TestConnReadResumes checks that a read that times out inside a reply
// keeps what it has, so the next read returns the whole reply: the
// Watcher's subscription read times out at every heartbeat, whatever is
// arriving.
func TestConnReadResumes(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	c := &conn{nc: client, timeout: time.Second, stop: func() bool { return false }}
	defer c.close()
	msg := "*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$9\r\ng a 1 b 2\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n"
	split := 20 // inside the first reply
	go func() {
		server.Write([]byte(msg[:split]))
		time.Sleep(100 * time.Millisecond)
		server.Write([]byte(msg[split:]))
	}()
	if r, err := c.read(time.Now().Add(30 * time.Millisecond)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("first read = %q, %v; want a timeout", r, err)
	}
	r, err := c.read(time.Now().Add(2 * time.Second))
	if err != nil || string(r) != msg[:len(msg)-len("*2\r\n$4\r\npong\r\n$0\r\n\r\n")] {
		t.Fatalf("second read = %q, %v", r, err)
	}
	r, err = c.read(time.Now().Add(2 * time.Second))
	if err != nil || string(r) != "*2\r\n$4\r\npong\r\n$0\r\n\r\n" {
		t.Fatalf("third read = %q, %v", r, err)
	}
}

// TestConnReplyTooLong checks that a server sending an endless reply is
// cut off rather than buffered without bound.
func TestConnReplyTooLong(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	c := &conn{nc: client, timeout: time.Second, stop: func() bool { return false }}
	defer c.close()
	go func() {
		server.Write([]byte("$99999999\r\n"))
		chunk := make([]byte, 64<<10)
		for range 2 * maxReply / len(chunk) {
			if _, err := server.Write(chunk); err != nil {
				return
			}
		}
	}()
	if _, err := c.read(time.Now().Add(5 * time.Second)); !errors.Is(err, errReplyTooLong) {
		t.Fatalf("read = %v, want errReplyTooLong", err)
	}
}

func TestNewRejects(t *testing.T) {
	_, err := New(Config{Pool: "p"}, nil)
	if !errors.Is(err, ErrNoSentinels) || !errors.Is(err, ErrNoGroups) {
		t.Errorf("empty Config: %v, want ErrNoSentinels and ErrNoGroups", err)
	}
	cfg := Config{Pool: "p", Groups: []string{"a", "b", "a"}, Sentinels: sentinelServers("127.0.0.1:1")}
	if _, err := New(cfg, nil); errText(err) != `sentinel: pool "p": group "a" listed twice` {
		t.Errorf("duplicate group: %v", err)
	}
	cfg.Groups = []string{"a"}
	w, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Close without Start returns, and Start after Close does nothing.
	w.Close()
	w.Start()
	w.Close()
	if _, ok := w.Master("a"); ok {
		t.Error("Master of a watcher that never ran is known")
	}
}

// errText is err's message, or "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
