package sentinel

import (
	"net"
	"strings"
	"testing"
)

// FuzzParseReplies feeds arbitrary bytes to every parser of Sentinel and
// master replies: none may panic, and an address they accept must be a
// valid host:port.
func FuzzParseReplies(f *testing.F) {
	for _, seed := range []string{
		"*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6379\r\n",
		"*-1\r\n",
		"$-1\r\n",
		"-IDONTKNOW No such master with that name\r\n",
		"mymaster 127.0.0.1 6379 127.0.0.1 6380",
		"my master ::1 6379 ::1 6380",
		"*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n",
		"*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$5\r\nhello\r\n",
		"*2\r\n$4\r\npong\r\n$0\r\n\r\n",
		"*2\r\n$9\r\n127.0.0.1\r\n$5\r\n99999\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if addr, known, err := parseMasterAddr(b); err == nil && known {
			checkAddr(t, addr)
		}
		if sm, err := parseSwitchMaster(b); err == nil {
			checkAddr(t, sm.oldAddr)
			checkAddr(t, sm.newAddr)
			if sm.group == "" {
				t.Errorf("switch-master %q: empty group accepted", b)
			}
		}
		_, _ = parseRole(b)
		_, _ = parsePush(b)
	})
}

func checkAddr(t *testing.T, addr string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" || strings.ContainsAny(addr, "\r\n") {
		t.Errorf("accepted address %q: %v", addr, err)
	}
}
