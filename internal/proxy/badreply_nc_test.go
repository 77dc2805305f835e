package proxy

import (
	"bufio"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

// TestBadReplyMatchesNutcracker: nutcracker and shardproxy, each in front
// of a fake server that answers with broken bytes. Where nutcracker
// answers with errors, shardproxy's start the same way and add the
// reason. Where nutcracker does not see that the reply is broken, the
// difference is documented (docs/compatibility.md) and checked here, so
// that the page stays true.
func TestBadReplyMatchesNutcracker(t *testing.T) {
	const unseen = "(nothing within a second)"
	cases := []struct {
		p     *badProto
		reply string
		// nc is what nutcracker sends for p.send when it is not the same
		// errors as shardproxy's, or unseen; "" when it is.
		nc string
	}{
		{badRedis, "this is not resp\r\n", ""},
		{badRedis, "$abc\r\n", ""},
		{badRedis, "$-7\r\n", "$-7\r\n+PONG\r\n"}, // taken for a null bulk
		{badRedis, "+OK\n", unseen},               // waits for a "\r\n" that never comes
		{badMemcache, "this is garbage\r\n", ""},
		{badMemcache, "VALUE bad 0 3\r\nabcXY", ""},
		{badMemcache, "VALUE broken\r\n", unseen},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s %q", tc.p.name, tc.reply), func(t *testing.T) {
			f := startFakeServer(t, tc.p.parse, func(key string) fakeReply {
				if key == "bad" {
					return mute(tc.reply)
				}
				return fakeReply{data: tc.p.good(key)}
			})
			pool := ""
			if tc.p == badRedis {
				pool = "  redis: true\n"
			}
			ncConf := fmt.Sprintf("nc:\n  listen: 127.0.0.1:%d\n%s  servers:\n   - %s:1\n", testutil.FreePort(t), pool, f.addr)
			testutil.StartNutcracker(t, ncConf)
			nc := dialRaw(t, listenAddrsOf(ncConf)[0])
			nc.send(tc.p.send)
			// Everything nutcracker sends within a second (it never
			// closes the client's connection here).
			_ = nc.conn.SetReadDeadline(time.Now().Add(time.Second))
			var got strings.Builder
			r := bufio.NewReader(nc.conn)
			for {
				line, err := r.ReadString('\n')
				got.WriteString(line)
				if err != nil {
					break
				}
			}
			ncGot := got.String()
			if ncGot == "" {
				ncGot = unseen
			}

			_, spAddr := tc.p.pool(t, "", f.addr)
			sp := dialRaw(t, spAddr)
			sp.send(tc.p.send)
			var spGot []string
			for range tc.p.want("") {
				spGot = append(spGot, tc.p.read(t, sp))
			}
			t.Logf("nutcracker %q, shardproxy %q", ncGot, spGot)

			if tc.nc != "" {
				if ncGot != tc.nc {
					t.Errorf("nutcracker: %q, want %q (docs/compatibility.md)", ncGot, tc.nc)
				}
				return
			}
			// The same replies, but for the reason after nutcracker's
			// "Invalid argument".
			isErr := strings.TrimSuffix(tc.p.errLine(""), "\r\n") // "-ERR ", "SERVER_ERROR "
			ncErr := tc.p.errLine("Invalid argument")
			var want strings.Builder
			for i, line := range spGot {
				if !strings.HasPrefix(line, isErr) {
					want.WriteString(line) // PONG
					continue
				}
				want.WriteString(ncErr)
				if start := strings.TrimSuffix(ncErr, "\r\n") + ": bad reply from server "; !strings.HasPrefix(line, start) {
					t.Errorf("shardproxy reply %d: %q, want it to start with %q", i, line, start)
				}
			}
			if ncGot != want.String() {
				t.Errorf("nutcracker: %q, want %q", ncGot, want.String())
			}
		})
	}
}
