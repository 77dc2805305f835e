package proxy

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/internal/hashkit"
	"github.com/shardproxy/shardproxy/internal/testutil"
)

// TestPlacementMatchesNutcracker is the live differential test of key
// placement: the same pools served by nutcracker and by shardproxy over the
// same redis-servers, ≥ 2,000 keys per hash × distribution, compared backend
// by backend. Each pool uses its own database so the runs do not mix.
func TestPlacementMatchesNutcracker(t *testing.T) {
	servers := startRedises(t, 3, "databases 64")
	hashes := hashkit.HashNames()
	dists := []string{"ketama", "modula"}

	var ncConf, spConf strings.Builder
	type poolRef struct {
		hash, dist string
		ncDB, spDB int
	}
	var pools []poolRef
	for _, h := range hashes {
		for _, d := range dists {
			i := len(pools)
			pr := poolRef{h, d, 1 + i, 1 + i + len(hashes)*len(dists)}
			pools = append(pools, pr)
			body := fmt.Sprintf("  redis: true\n  hash: %s\n  distribution: %s\n  hash_tag: \"{}\"\n  servers:\n   - %s:1\n   - %s:2 named\n   - %s:1\n",
				h, d, servers[0].Addr, servers[1].Addr, servers[2].Addr)
			fmt.Fprintf(&ncConf, "p%d:\n  listen: 127.0.0.1:%d\n  redis_db: %d\n%s", i, testutil.FreePort(t), pr.ncDB, body)
			fmt.Fprintf(&spConf, "p%d:\n  listen: 127.0.0.1:%d\n  redis_db: %d\n%s", i, testutil.FreePort(t), pr.spDB, body)
		}
	}
	nc := testutil.StartNutcracker(t, ncConf.String())
	_ = nc
	px, _ := startProxy(t, spConf.String())
	ncAddrs := listenAddrsOf(ncConf.String())

	const nkeys = 2000
	keys := make([]string, 0, nkeys)
	for i := 0; len(keys) < nkeys; i++ {
		switch i % 5 {
		case 0:
			keys = append(keys, fmt.Sprintf("{user%d}:profile", i))
		case 1:
			keys = append(keys, fmt.Sprintf("k\xff\x80%d\x00", i))
		default:
			keys = append(keys, fmt.Sprintf("key:%d", i))
		}
	}
	var req, want strings.Builder
	for _, k := range keys {
		req.WriteString(cmd("SET", k, "1"))
		want.WriteString("+OK\r\n")
	}
	for i := range pools {
		for _, addr := range []string{ncAddrs[i], px.Pools()[i].Addr().String()} {
			c := dialRaw(t, addr)
			c.send(req.String())
			var got strings.Builder
			for range keys {
				got.WriteString(c.readReply())
			}
			if got.String() != want.String() {
				t.Fatalf("pool %d via %s: SET replies not all +OK", i, addr)
			}
		}
	}

	mismatches := 0
	for _, pr := range pools {
		ncPlace := placement(t, servers, pr.ncDB)
		spPlace := placement(t, servers, pr.spDB)
		if len(ncPlace) != nkeys || len(spPlace) != nkeys {
			t.Errorf("%s/%s: %d keys placed by nutcracker, %d by shardproxy, want %d", pr.hash, pr.dist, len(ncPlace), len(spPlace), nkeys)
		}
		bad := 0
		for k, where := range ncPlace {
			if spPlace[k] != where {
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%s/%s: %d of %d keys placed differently", pr.hash, pr.dist, bad, nkeys)
		}
		mismatches += bad
	}
	t.Logf("%d pools × %d keys compared, %d mismatches", len(pools), nkeys, mismatches)
}

// placement returns key → server address for database db.
func placement(t *testing.T, servers []*testutil.Server, db int) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, s := range servers {
		c := dialRaw(t, s.Addr)
		if got := c.roundTrip(fmt.Sprintf("SELECT %d\r\n", db)); got != "+OK\r\n" {
			t.Fatalf("SELECT %d: %q", db, got)
		}
		for _, k := range bulkArray(c.roundTrip("KEYS *\r\n")) {
			out[k] = s.Addr
		}
	}
	return out
}

// bulkArray decodes a RESP array of bulk strings.
func bulkArray(reply string) []string {
	var out []string
	rest := reply[strings.Index(reply, "\r\n")+2:]
	for len(rest) > 0 {
		var n int
		fmt.Sscanf(rest[1:], "%d", &n)
		rest = rest[strings.Index(rest, "\r\n")+2:]
		out = append(out, rest[:n])
		rest = rest[n+2:]
	}
	sort.Strings(out)
	return out
}

func listenAddrsOf(yaml string) []string {
	var out []string
	for _, line := range strings.Split(yaml, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "listen: "); ok {
			out = append(out, v)
		}
	}
	return out
}
