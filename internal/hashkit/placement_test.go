package hashkit

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/internal/config"
)

// TestPlacementVectors checks Pick against key placement observed from the
// real nutcracker process over real redis-server and memcached backends
// (testdata/nutcracker/placement-*.txt, written by the placementgen
// generator; the header of each file explains its format). Each ring is
// built from the pool's YAML lines through config.Parse and
// Server.RingName, so the ring-name rules (explicit names, host:port, the
// bare host of port 11211) are checked end to end, with the live mask of
// the servers nutcracker had ejected.
func TestPlacementVectors(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "nutcracker", "placement-*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var cov placementCoverage
	for _, p := range paths {
		checkPlacementFile(t, p, &cov)
	}
	t.Logf("%d files, %d pools, %d placements (%d with a server ejected), %d keys checked",
		len(paths), cov.pools, cov.places, cov.ejected, cov.checks)

	// The files must cover what the generator was asked to cover; a
	// regeneration that silently lost part of it fails here.
	for _, h := range HashNames() {
		for _, d := range []string{"ketama", "modula"} {
			if !cov.hashDist[h+"-"+d] {
				t.Errorf("no placement vectors for %s %s", h, d)
			}
		}
	}
	for _, n := range []int{1, 3, 10, 25} {
		if !cov.sizes[n] {
			t.Errorf("no placement vectors for a pool of %d servers", n)
		}
	}
	for what, ok := range map[string]bool{
		"a server ejected":           cov.ejected > 0,
		"every server ejected":       cov.allEjected,
		"a named server":             cov.named,
		"a server of weight above 1": cov.weighted,
		"hash_tag":                   cov.tagged,
		"memcached":                  cov.memcache,
		"an unnamed server on port 11211 (the generator found the port busy?)": cov.port11211,
	} {
		if !ok {
			t.Errorf("no placement vectors with %s: regenerate them (README, Regenerating placement vectors)", what)
		}
	}
	if cov.places < 1300 || cov.checks < 200000 {
		t.Errorf("only %d placements, %d keys", cov.places, cov.checks)
	}
}

// placementCoverage counts what the vector files exercise.
type placementCoverage struct {
	pools, places, ejected, checks int

	hashDist                                      map[string]bool
	sizes                                         map[int]bool
	allEjected, named, weighted, tagged, memcache bool
	port11211                                     bool
}

// checkPlacementFile checks every placement of one vector file.
func checkPlacementFile(t *testing.T, path string, cov *placementCoverage) {
	t.Helper()
	name := filepath.Base(path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		keys  [][]byte
		pools = map[string]*config.Pool{}
		cur   string   // the pool whose YAML lines are being read
		conf  []string // its lines
	)
	if cov.hashDist == nil {
		cov.hashDist, cov.sizes = map[string]bool{}, map[int]bool{}
	}
	endPool := func(line int) {
		if cur == "" {
			return
		}
		p, err := placementPool(cur, conf)
		if err != nil {
			t.Fatalf("%s:%d: pool %s: %v", name, line, cur, err)
		}
		pools[cur] = p
		cov.pools++
		cur, conf = "", nil
	}
	s := bufio.NewScanner(f)
	s.Buffer(nil, 1<<20)
	n := 0
	for s.Scan() {
		n++
		l := s.Text()
		if yaml, ok := strings.CutPrefix(l, "| "); ok {
			if cur == "" {
				t.Fatalf("%s:%d: YAML line outside a pool", name, n)
			}
			conf = append(conf, yaml)
			continue
		}
		endPool(n)
		if l == "" || l[0] == '#' {
			continue
		}
		kind, rest, _ := strings.Cut(l, " ")
		switch kind {
		case "key":
			k := []byte{}
			if rest != "-" {
				if k, err = hex.DecodeString(rest); err != nil {
					t.Fatalf("%s:%d: %v", name, n, err)
				}
			}
			keys = append(keys, k)
		case "pool":
			if pools[rest] != nil || rest == "" {
				t.Fatalf("%s:%d: pool %q defined twice or unnamed", name, n, rest)
			}
			cur = rest
		case "place":
			checkPlacement(t, fmt.Sprintf("%s:%d", name, n), rest, pools, keys, cov)
		default:
			t.Fatalf("%s:%d: unknown line %q", name, n, kind)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	endPool(n)
}

// placementPool parses a pool's YAML lines with config.Parse, adding the
// listen address that the file leaves out.
func placementPool(name string, lines []string) (*config.Pool, error) {
	var b strings.Builder
	b.WriteString("vectors:\n  listen: 127.0.0.1:22121\n")
	for _, l := range lines {
		b.WriteString("  " + l + "\n")
	}
	cfg, err := config.Parse(name, []byte(b.String()))
	if err != nil {
		return nil, err
	}
	return cfg.Pools[0], nil
}

// checkPlacement checks one place line: "<pool> <live mask> <servers> [error]".
func checkPlacement(t *testing.T, pos, line string, pools map[string]*config.Pool, keys [][]byte, cov *placementCoverage) {
	t.Helper()
	f := strings.SplitN(line, " ", 4)
	if len(f) < 3 {
		t.Fatalf("%s: short place line", pos)
	}
	p := pools[f[0]]
	mask, want := f[1], f[2]
	if p == nil {
		t.Fatalf("%s: unknown pool %q", pos, f[0])
	}
	if len(mask) != len(p.Servers) || len(want) != len(keys) {
		t.Fatalf("%s: %d live flags for %d servers, %d placements for %d keys", pos, len(mask), len(p.Servers), len(want), len(keys))
	}
	h, ok := HashByName(p.Hash)
	d, ok2 := ParseDistribution(p.Distribution)
	if !ok || !ok2 {
		t.Fatalf("%s: hash %q, distribution %q", pos, p.Hash, p.Distribution)
	}
	nodes := make([]Node, len(p.Servers))
	live := make([]bool, len(p.Servers))
	for i, srv := range p.Servers {
		nodes[i] = Node{Name: srv.RingName(), Weight: srv.Weight}
		live[i] = mask[i] == '1'
		cov.named = cov.named || srv.Name != ""
		cov.weighted = cov.weighted || srv.Weight > 1
		cov.port11211 = cov.port11211 || srv.Name == "" && srv.Port == 11211 && !p.Redis
	}
	r, err := NewRing(Spec{Hash: h, Distribution: d, HashTag: p.HashTag}, nodes, live)
	if err != nil {
		t.Fatalf("%s: %v", pos, err)
	}
	bad := 0
	for i, k := range keys {
		w := want[i]
		got := r.Pick(k)
		if w == '-' && got == -1 || got >= 0 && got < len(placementDigits) && w == placementDigits[got] {
			continue
		}
		if bad++; bad <= 3 {
			names := make([]string, len(nodes))
			for j, n := range nodes {
				names[j] = fmt.Sprintf("%q:%d", n.Name, n.Weight)
			}
			t.Errorf("%s: pool %s (%s %s tag %q, live %s, ring %s): Pick(%q) = %d, nutcracker placed it on %c",
				pos, f[0], p.Hash, p.Distribution, p.HashTag, mask, strings.Join(names, " "), k, got, w)
		}
	}
	if bad > 3 {
		t.Errorf("%s: %d of %d keys misplaced", pos, bad, len(keys))
	}
	cov.places++
	cov.checks += len(keys)
	cov.hashDist[p.Hash+"-"+p.Distribution] = true
	cov.sizes[len(p.Servers)] = true
	cov.tagged = cov.tagged || p.HashTag != ""
	cov.memcache = cov.memcache || !p.Redis
	if strings.Contains(mask, "0") {
		cov.ejected++
		cov.allEjected = cov.allEjected || !strings.Contains(mask, "1")
	}
}

// placementDigits are the characters a place line uses for server
// positions 0 to 35.
const placementDigits = "0123456789abcdefghijklmnopqrstuvwxyz"
