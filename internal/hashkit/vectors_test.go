package hashkit

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The vector files hold nutcracker 0.5.0's own answers, produced by
// testdata/oracle/gen.go, which calls the binary's functions in-process.

func TestHashVectors(t *testing.T) {
	names := HashNames()
	n := 0
	forLines(t, "testdata/hash_vectors.txt", func(line int, f []string) {
		if len(f) != 1+len(names) {
			t.Fatalf("hash_vectors.txt:%d: %d fields", line, len(f))
		}
		key := vectorKey(t, f[0])
		for i, name := range names {
			h, _ := HashByName(name)
			want, err := strconv.ParseUint(f[1+i], 16, 32)
			if err != nil {
				t.Fatalf("hash_vectors.txt:%d: %v", line, err)
			}
			if got := h(key); got != uint32(want) {
				t.Errorf("hash_vectors.txt:%d: %s(%.40q) = %08x, nutcracker %08x", line, name, key, got, want)
			}
		}
		n++
	})
	if n < 600 {
		t.Fatalf("only %d hash vectors", n)
	}
}

func TestRingVectors(t *testing.T) {
	var (
		spec            Spec
		nodes           []Node
		live            []bool
		ring            *Ring
		pos             string
		rings, checks   int
		wantPts, gotPts int
	)
	build := func() *Ring {
		if ring == nil {
			r, err := NewRing(spec, nodes, live)
			if err != nil {
				t.Fatalf("%s: %v", pos, err)
			}
			ring = r
		}
		return ring
	}
	forLines(t, "testdata/ring_vectors.txt", func(line int, f []string) {
		switch f[0] {
		case "ring":
			h, ok := HashByName(f[2])
			d, ok2 := ParseDistribution(f[1])
			if !ok || !ok2 {
				t.Fatalf("ring_vectors.txt:%d: bad ring line", line)
			}
			spec = Spec{Hash: h, Distribution: d}
			if f[3] != "-" {
				spec.HashTag = string(vectorKey(t, f[3]))
			}
			nodes, live, ring = nil, nil, nil
			pos = fmt.Sprintf("ring_vectors.txt:%d (%s %s %q)", line, f[1], f[2], spec.HashTag)
			rings++
		case "node":
			w, _ := strconv.Atoi(f[2])
			nodes = append(nodes, Node{Name: string(vectorKey(t, f[1])), Weight: w})
			live = append(live, f[3] == "1")
		case "continuum":
			r := build()
			wantPts, _ = strconv.Atoi(f[1])
			gotPts = len(r.points)
			sum := sha256.New()
			var b [8]byte
			for i, p := range r.points {
				binary.LittleEndian.PutUint32(b[:], uint32(r.owner[i]))
				binary.LittleEndian.PutUint32(b[4:], p)
				sum.Write(b[:])
			}
			if gotPts != wantPts || hex.EncodeToString(sum.Sum(nil)) != f[2] {
				t.Errorf("%s: continuum of %d points differs from nutcracker's %d", pos, gotPts, wantPts)
			}
		case "hash":
			h, _ := strconv.ParseUint(f[1], 16, 32)
			want, _ := strconv.Atoi(f[2])
			if got := build().Lookup(uint32(h)); got != want {
				t.Errorf("%s: Lookup(%08x) = %d, nutcracker %d", pos, h, got, want)
			}
			checks++
		case "key":
			key := vectorKey(t, f[1])
			want, _ := strconv.Atoi(f[2])
			if got := build().Pick(key); got != want {
				t.Errorf("%s: Pick(%q) = %d, nutcracker %d", pos, key, got, want)
			}
			checks++
		default:
			t.Fatalf("ring_vectors.txt:%d: unknown line %q", line, f[0])
		}
	})
	if rings < 90 || checks < 3000 {
		t.Fatalf("only %d rings, %d checks", rings, checks)
	}
}

// forLines calls fn with the fields of each non-comment line of path.
func forLines(t *testing.T, path string, fn func(line int, fields []string)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(nil, 1<<20)
	for n := 1; s.Scan(); n++ {
		if l := s.Text(); l != "" && l[0] != '#' {
			fn(n, strings.Fields(l))
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
}

// vectorKey decodes a key field: "-" is empty, "rep:<n>" is n bytes i*7.
func vectorKey(t *testing.T, s string) []byte {
	t.Helper()
	if s == "-" {
		return []byte{}
	}
	if n, ok := strings.CutPrefix(s, "rep:"); ok {
		size, err := strconv.Atoi(n)
		if err != nil {
			t.Fatal(err)
		}
		k := make([]byte, size)
		for i := range k {
			k[i] = byte(i * 7)
		}
		return k
	}
	k, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
