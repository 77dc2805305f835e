package hashkit

import (
	"fmt"
	"testing"
)

func BenchmarkHash(b *testing.B) {
	for _, size := range []int{16, 256} {
		key := make([]byte, size)
		for i := range key {
			key[i] = byte('a' + i%26)
		}
		for _, name := range HashNames() {
			h, _ := HashByName(name)
			b.Run(fmt.Sprintf("%s/%d", name, size), func(b *testing.B) {
				b.SetBytes(int64(size))
				for b.Loop() {
					h(key)
				}
			})
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	nodes := weightedNodes(100)
	for _, d := range []Distribution{Ketama, Modula} {
		r := mustRing(b, fnvSpec(d), nodes, nil)
		b.Run(d.String(), func(b *testing.B) {
			b.ReportAllocs()
			h := uint32(0)
			for b.Loop() {
				h += 0x9e3779b9
				r.Lookup(h)
			}
		})
	}
}

// BenchmarkPick is a whole placement: hash tag, fnv1a_64, ring.
func BenchmarkPick(b *testing.B) {
	nodes := weightedNodes(100)
	key := []byte("user:{1000}:profile")
	for _, d := range []Distribution{Ketama, Modula} {
		spec := fnvSpec(d)
		spec.HashTag = "{}"
		r := mustRing(b, spec, nodes, nil)
		b.Run(d.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r.Pick(key)
			}
		})
	}
}

// BenchmarkNewRing is the cost of a rebuild on ejection.
func BenchmarkNewRing(b *testing.B) {
	nodes := weightedNodes(100)
	live := make([]bool, len(nodes))
	for i := range live {
		live[i] = i != 17
	}
	for _, d := range []Distribution{Ketama, Modula} {
		b.Run(d.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				mustRing(b, fnvSpec(d), nodes, live)
			}
		})
	}
}
