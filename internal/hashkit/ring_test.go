package hashkit

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func fnvSpec(d Distribution) Spec {
	return Spec{Hash: FNV1a_64, Distribution: d}
}

func equalNodes(n int) []Node {
	nodes := make([]Node, n)
	for i := range nodes {
		nodes[i] = Node{Name: fmt.Sprintf("10.0.0.%d:6379", i), Weight: 1}
	}
	return nodes
}

func mustRing(t testing.TB, spec Spec, nodes []Node, live []bool) *Ring {
	t.Helper()
	r, err := NewRing(spec, nodes, live)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestKetamaPoints(t *testing.T) {
	for _, tc := range []struct {
		w, total uint32
		nlive    int
		want     uint32
		why      string
	}{
		{1, 1, 1, 160, "one server"},
		{1, 3, 3, 160, "three equal"},
		{1, 25, 25, 156, "float(1/25)*40*25 rounds to just under 40"},
		{1, 100001, 2, 0, "weights 100000:1, the light one"},
		{100000, 100001, 2, 316, "weights 100000:1, the heavy one"},
		{3, 4, 2, 240, "3:1"},
		{1, 4, 2, 80, "1:3"},
	} {
		if got := ketamaPoints(tc.w, tc.total, tc.nlive); got != tc.want {
			t.Errorf("ketamaPoints(%d, %d, %d) = %d, want %d (%s)", tc.w, tc.total, tc.nlive, got, tc.want, tc.why)
		}
	}
	// Equal servers get 160 points except where float rounding bites.
	short := 0
	for n := 1; n <= 200; n++ {
		if p := ketamaPoints(1, uint32(n), n); p != 160 {
			if p != 156 {
				t.Errorf("%d equal servers: %d points each", n, p)
			}
			short++
		}
	}
	if short == 0 {
		t.Error("no pool size loses points to rounding")
	}
}

func TestKetamaRing(t *testing.T) {
	r := mustRing(t, fnvSpec(Ketama), equalNodes(25), nil)
	if len(r.points) != 25*156 {
		t.Fatalf("25 equal servers: %d points, want %d", len(r.points), 25*156)
	}
	if !slices.IsSorted(r.points) {
		t.Fatal("points not sorted")
	}
	count := map[int32]int{}
	for _, o := range r.owner {
		count[o]++
	}
	for i := range int32(25) {
		if count[i] != 156 {
			t.Errorf("server %d owns %d points", i, count[i])
		}
	}
	// Lookup: the first point >= h; above the last point wraps to the first.
	p := r.points
	for _, tc := range []struct {
		h    uint32
		want int
	}{
		{0, 0},
		{p[0], 0},
		{p[0] + 1, 1},
		{p[10], 10},
		{p[10] - 1, 10},
		{p[len(p)-1], len(p) - 1},
		{p[len(p)-1] + 1, 0},
		{^uint32(0), 0},
	} {
		if got := r.Lookup(tc.h); got != int(r.owner[tc.want]) {
			t.Errorf("Lookup(%#x) = %d, want point %d's server %d", tc.h, got, tc.want, r.owner[tc.want])
		}
	}

	// 100000:1 leaves the light server out.
	r = mustRing(t, fnvSpec(Ketama), []Node{{"heavy", 100000}, {"light", 1}}, nil)
	if len(r.points) != 316 || slices.Contains(r.owner, 1) {
		t.Errorf("100000:1: %d points, light server present: %v", len(r.points), slices.Contains(r.owner, 1))
	}
}

// Two servers whose names give the same point value (0x540c3e1f): the one
// first in twemproxy's server order (TwemproxyOrder: node-546) wins the tie
// whatever the configuration order — glibc's stable qsort over nutcracker's
// name-sorted server array.
func TestKetamaTie(t *testing.T) {
	const tie = 0x540c3e1f
	for _, names := range [][2]string{{"node-546", "node-699"}, {"node-699", "node-546"}} {
		r := mustRing(t, Spec{Hash: MD5, Distribution: Ketama}, []Node{{names[0], 1}, {names[1], 1}}, nil)
		winner := int32(slices.Index(names[:], "node-546"))
		i := slices.Index(r.points, tie)
		if i < 0 || r.points[i+1] != tie || r.owner[i] != winner || r.owner[i+1] != 1-winner {
			t.Fatalf("%v: tie not in twemproxy's server order", names)
		}
		if got := r.Lookup(tie); got != int(winner) {
			t.Errorf("%v: Lookup(tie) = %d, want %d", names, got, winner)
		}
	}
}

// nutcracker sorts a pool's servers by name (shorter first), so modula's
// slots follow that order, not the configuration's.
func TestTwemproxyOrder(t *testing.T) {
	nodes := []Node{{"127.0.0.1:7002", 1}, {"named", 2}, {"127.0.0.1:7001", 1}, {"10.0.0.1:6379", 1}}
	if got, want := TwemproxyOrder(nodes), []int{1, 3, 2, 0}; !slices.Equal(got, want) {
		t.Fatalf("TwemproxyOrder = %v, want %v", got, want)
	}
	r := mustRing(t, Spec{Hash: FNV1a_64, Distribution: Modula}, nodes, nil)
	// Slots: named, named, 10.0.0.1:6379, 127.0.0.1:7001, 127.0.0.1:7002.
	for h, want := range []int{1, 1, 3, 2, 0} {
		if got := r.Lookup(uint32(h)); got != want {
			t.Errorf("modula slot %d: server %d, want %d", h, got, want)
		}
	}
}

func TestKetamaHostTruncation(t *testing.T) {
	long := string(slices.Repeat([]byte("n"), 300))
	if got := ketamaHost(nil, long, 7); len(got) != 272 || got[271] != 'n' {
		t.Errorf("300-byte name: %d bytes", len(got))
	}
	n269, n270 := string(slices.Repeat([]byte("n"), 269)), string(slices.Repeat([]byte("n"), 270))
	if got := string(ketamaHost(nil, n269, 12)); got != n269+"-12" {
		t.Errorf("269-byte name: %q, want 272 bytes uncut", got[260:])
	}
	if got := string(ketamaHost(nil, n270, 12)); got != n270+"-1" {
		t.Errorf("270-byte name: %q, want cut to 272 bytes", got[260:])
	}
	if got := string(ketamaHost(nil, "a\x00b", 3)); got != "a-3" {
		t.Errorf("name with NUL: %q", got)
	}
	// Two names equal in their first 272 bytes share every point.
	a := mustRing(t, fnvSpec(Ketama), []Node{{long + "a", 1}}, nil)
	b := mustRing(t, fnvSpec(Ketama), []Node{{long + "b", 1}}, nil)
	if !slices.Equal(a.points, b.points) {
		t.Error("names cut to the same 272 bytes give different points")
	}
}

func TestModula(t *testing.T) {
	nodes := []Node{{"a", 2}, {"b", 1}, {"c", 3}}
	for _, tc := range []struct {
		live  []bool
		slots []int
	}{
		{nil, []int{0, 0, 1, 2, 2, 2}},
		{[]bool{true, false, true}, []int{0, 0, 2, 2, 2}},
		{[]bool{false, true, false}, []int{1}},
	} {
		r := mustRing(t, fnvSpec(Modula), nodes, tc.live)
		for h := range uint32(40) {
			if got, want := r.Lookup(h), tc.slots[h%uint32(len(tc.slots))]; got != want {
				t.Errorf("live %v: Lookup(%d) = %d, want %d", tc.live, h, got, want)
			}
		}
		if got, want := r.Lookup(^uint32(0)), tc.slots[^uint32(0)%uint32(len(tc.slots))]; got != want {
			t.Errorf("live %v: Lookup(max) = %d, want %d", tc.live, got, want)
		}
	}
}

func TestRandom(t *testing.T) {
	nodes := []Node{{"a", 1000}, {"b", 1}, {"c", 1}, {"d", 1}}
	live := []bool{true, false, true, true}
	var n uint32
	spec := Spec{Distribution: Random, Rand: func() uint32 { n++; return n }}
	r := mustRing(t, spec, nodes, live)
	count := make([]int, len(nodes))
	for range 3000 {
		i := r.Pick([]byte("same key"))
		if !r.IsLive(i) {
			t.Fatalf("random picked server %d, not live", i)
		}
		count[i]++
	}
	// One slot per live server in configuration order, weights ignored.
	if count[0] != 1000 || count[1] != 0 || count[2] != 1000 || count[3] != 1000 {
		t.Errorf("random picks %v, want 1000 each for the live servers", count)
	}
	if got := r.Lookup(1); got != 2 {
		t.Errorf("Lookup(1) = %d, want the second live server 2", got)
	}
}

// Ejecting servers gives the ring built from the live servers alone.
func TestLiveMaskEqualsLiveOnly(t *testing.T) {
	nodes := []Node{{"a", 1}, {"b", 3}, {"c", 1}, {"d", 2}, {"e", 1}, {"f", 5}}
	live := []bool{true, false, true, true, false, true}
	var kept []Node
	var index []int
	for i, l := range live {
		if l {
			kept = append(kept, nodes[i])
			index = append(index, i)
		}
	}
	for _, d := range []Distribution{Ketama, Modula} {
		masked := mustRing(t, fnvSpec(d), nodes, live)
		alone := mustRing(t, fnvSpec(d), kept, nil)
		for h := uint32(0); h < 1<<32-1<<22; h += 1<<22 - 1 {
			if got, want := masked.Lookup(h), index[alone.Lookup(h)]; got != want {
				t.Fatalf("%v: Lookup(%#x) = %d with the mask, %d alone", d, h, got, want)
			}
		}
		if masked.Live() != 4 || masked.Len() != 6 {
			t.Errorf("%v: Live %d Len %d", d, masked.Live(), masked.Len())
		}
		again, err := masked.Rebuild(nil)
		if err != nil || again.Live() != 6 {
			t.Errorf("%v: Rebuild(nil): %v, %d live", d, err, again.Live())
		}
	}
}

func TestNoLiveServer(t *testing.T) {
	for _, d := range []Distribution{Ketama, Modula, Random} {
		spec := fnvSpec(d)
		spec.Rand = func() uint32 { return 7 }
		for _, n := range []int{1, 3} {
			r := mustRing(t, spec, equalNodes(n), make([]bool, n))
			if got := r.Pick([]byte("k")); got != -1 {
				t.Errorf("%v, %d servers none live: Pick = %d", d, n, got)
			}
			if got := r.Lookup(5); got != -1 {
				t.Errorf("%v, %d servers none live: Lookup = %d", d, n, got)
			}
		}
	}
}

func TestPickRules(t *testing.T) {
	calls := 0
	var last []byte
	spy := func(k []byte) uint32 { calls++; last = k; return FNV1a_64(k) }

	// One configured server: index 0, nothing hashed.
	r := mustRing(t, Spec{Hash: spy, Distribution: Ketama, HashTag: "{}"}, equalNodes(1), nil)
	if got := r.Pick([]byte("anything")); got != 0 || calls != 0 {
		t.Errorf("one server: Pick = %d after %d hash calls", got, calls)
	}
	// Empty key: hash 0 without calling the hash.
	for _, d := range []Distribution{Ketama, Modula} {
		r = mustRing(t, Spec{Hash: spy, Distribution: d}, equalNodes(7), nil)
		if got, want := r.Pick(nil), r.Lookup(0); got != want || calls != 0 {
			t.Errorf("%v: empty key: Pick = %d, Lookup(0) = %d, %d hash calls", d, got, want, calls)
		}
	}
	// Hash tag: only the tag is hashed.
	r = mustRing(t, Spec{Hash: spy, Distribution: Ketama, HashTag: "{}"}, equalNodes(7), nil)
	if got, want := r.Pick([]byte("user:{42}:name")), r.Lookup(FNV1a_64([]byte("42"))); got != want || string(last) != "42" {
		t.Errorf("tagged key: Pick = %d, want %d; hashed %q", got, want, last)
	}
	// Random never hashes.
	calls = 0
	r = mustRing(t, Spec{Hash: spy, Distribution: Random, Rand: func() uint32 { return 3 }}, equalNodes(7), nil)
	if got := r.Pick([]byte("k")); got != 3 || calls != 0 {
		t.Errorf("random: Pick = %d after %d hash calls", got, calls)
	}
}

func TestNewRingErrors(t *testing.T) {
	ok := equalNodes(2)
	for _, tc := range []struct {
		spec  Spec
		nodes []Node
		live  []bool
		want  error
	}{
		{fnvSpec(Ketama), nil, nil, ErrNoNodes},
		{fnvSpec(Ketama), []Node{{"a", 0}}, nil, ErrWeight},
		{fnvSpec(Modula), []Node{{"a", -1}}, nil, ErrWeight},
		{fnvSpec(Ketama), []Node{{"a", 1 << 31}, {"b", 1 << 31}}, nil, ErrTotalWeight},
		{fnvSpec(Ketama), ok, []bool{true}, ErrLiveMask},
		{Spec{Hash: FNV1a_64, Distribution: Ketama, HashTag: "{"}, ok, nil, ErrHashTag},
		{Spec{Hash: FNV1a_64, Distribution: Ketama, HashTag: "{}}"}, ok, nil, ErrHashTag},
		{Spec{Distribution: Modula}, ok, nil, ErrNoHash},
		{Spec{Distribution: Random}, ok, nil, ErrNoRand},
		{Spec{Hash: FNV1a_64, Distribution: 9}, ok, nil, ErrDistribution},
	} {
		if _, err := NewRing(tc.spec, tc.nodes, tc.live); !errors.Is(err, tc.want) {
			t.Errorf("NewRing(%v, %v, %v) = %v, want %v", tc.spec.Distribution, tc.nodes, tc.live, err, tc.want)
		}
	}
	if _, err := NewRing(fnvSpec(Ketama), []Node{{"a", 1<<31 - 1}, {"b", 1<<31 - 1}}, nil); err != nil {
		t.Errorf("total weight 2^32-2: %v", err)
	}
}

func TestParseDistribution(t *testing.T) {
	for _, d := range []Distribution{Ketama, Modula, Random} {
		if got, ok := ParseDistribution(d.String()); !ok || got != d {
			t.Errorf("ParseDistribution(%q) = %v, %v", d.String(), got, ok)
		}
	}
	if _, ok := ParseDistribution("Ketama"); ok {
		t.Error("ParseDistribution is case-sensitive in twemproxy")
	}
	if s := Distribution(7).String(); s != "Distribution(7)" {
		t.Errorf("String() = %q", s)
	}
}

// The ring must not change when the caller's slices do.
func TestRingCopiesInput(t *testing.T) {
	nodes := equalNodes(5)
	live := []bool{true, true, false, true, true}
	r := mustRing(t, fnvSpec(Ketama), nodes, live)
	before := r.Pick([]byte("k"))
	nodes[before].Name = "changed"
	live[before] = false
	live[2] = true
	if r.Pick([]byte("k")) != before || r.IsLive(2) || !r.IsLive(before) {
		t.Error("ring changed with the caller's slices")
	}
}

func TestNoAllocs(t *testing.T) {
	nodes := weightedNodes(100)
	key := []byte("user:{1000}:profile")
	for _, d := range []Distribution{Ketama, Modula, Random} {
		spec := Spec{Hash: FNV1a_64, Distribution: d, HashTag: "{}", Rand: func() uint32 { return 12345 }}
		r := mustRing(t, spec, nodes, nil)
		if n := testing.AllocsPerRun(200, func() { r.Pick(key) }); n != 0 {
			t.Errorf("%v: Pick allocates %v", d, n)
		}
		if n := testing.AllocsPerRun(200, func() { r.Lookup(0xdeadbeef) }); n != 0 {
			t.Errorf("%v: Lookup allocates %v", d, n)
		}
	}
	for _, name := range HashNames() {
		h, _ := HashByName(name)
		if n := testing.AllocsPerRun(100, func() { h(key) }); n != 0 {
			t.Errorf("%s allocates %v", name, n)
		}
	}
}

// weightedNodes is n servers with weights 1..10.
func weightedNodes(n int) []Node {
	nodes := make([]Node, n)
	for i := range nodes {
		nodes[i] = Node{Name: fmt.Sprintf("192.168.0.%d:11211", i), Weight: 1 + i%10}
	}
	return nodes
}
