package rediscmd

import (
	"strconv"
	"testing"
)

func benchmarkKeys(b *testing.B, args [][]byte) {
	dst := make([]int, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		c := Lookup(args[0])
		if err := c.CheckArity(len(args)); err != nil {
			b.Fatal(err)
		}
		var err error
		if dst, err = c.KeyIndexes(args, dst[:0]); err != nil || len(dst) == 0 {
			b.Fatal(dst, err)
		}
	}
}

func BenchmarkLookupKeyIndexesGET(b *testing.B) {
	benchmarkKeys(b, [][]byte{[]byte("GET"), []byte("user:1000:profile")})
}

func BenchmarkLookupKeyIndexesMSET10(b *testing.B) {
	args := [][]byte{[]byte("MSET")}
	for i := range 10 {
		args = append(args, []byte("key:"+strconv.Itoa(i)), []byte("value"))
	}
	benchmarkKeys(b, args)
}

func BenchmarkLookupKeyIndexesEVAL(b *testing.B) {
	benchmarkKeys(b, [][]byte{[]byte("evalsha"), []byte("e0e1f9fabfc9d4800c877a703b823ac0578ff8db"),
		[]byte("2"), []byte("{u}a"), []byte("{u}b"), []byte("arg")})
}

func BenchmarkResolveObjectEncoding(b *testing.B) {
	args := [][]byte{[]byte("OBJECT"), []byte("ENCODING"), []byte("k")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Resolve(args); err != nil {
			b.Fatal(err)
		}
	}
}
