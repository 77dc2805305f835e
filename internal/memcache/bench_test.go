package memcache

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// The messages of the hot path, one per kind, for the benchmarks and the
// allocation test.
func requestInputs() []struct {
	name string
	data []byte
} {
	keys10 := "get"
	for i := range 10 {
		keys10 += fmt.Sprintf(" key:%012d", i)
	}
	return []struct {
		name string
		data []byte
	}{
		{"Get", []byte("get key:000000000001\r\n")},
		{"Get10", []byte(keys10 + "\r\n")},
		{"Set100", []byte("set key:000000000001 0 0 100\r\n" + strings.Repeat("v", 100) + "\r\n")},
		{"MetaGet", []byte("mg key:000000000001 v f t c q Oabc k\r\n")},
		{"MetaSet100", []byte("ms key:000000000001 100 T60 F5 q\r\n" + strings.Repeat("v", 100) + "\r\n")},
		{"MetaGetBase64", []byte("mg a2V5OjAwMDAwMDAwMDAwMQ== b v\r\n")},
	}
}

func replyInputs() []struct {
	name string
	cmd  Command
	data []byte
} {
	var values10 []byte
	for i := range 10 {
		values10 = fmt.Appendf(values10, "VALUE key:%012d 0 100\r\n%s\r\n", i, strings.Repeat("v", 100))
	}
	values10 = append(values10, "END\r\n"...)
	return []struct {
		name string
		cmd  Command
		data []byte
	}{
		{"Stored", Set, []byte("STORED\r\n")},
		{"Value100", Get, []byte("VALUE key:000000000001 0 100\r\n" + strings.Repeat("v", 100) + "\r\nEND\r\n")},
		{"Values10", Get, values10},
		{"MetaVA100", MetaGet, []byte("VA 100 f0 c7\r\n" + strings.Repeat("v", 100) + "\r\n")},
		{"End", Get, []byte("END\r\n")},
	}
}

func BenchmarkParseRequest(b *testing.B) {
	for _, in := range requestInputs() {
		b.Run(in.name, func(b *testing.B) {
			var req Request
			b.SetBytes(int64(len(in.data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseRequest(in.data, &req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseRequestPipeline parses 100 pipelined gets from one buffer,
// the way a session reads a burst.
func BenchmarkParseRequestPipeline(b *testing.B) {
	var data []byte
	for i := range 100 {
		data = fmt.Appendf(data, "get key:%d\r\n", i)
	}
	var req Request
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		buf := data
		for len(buf) > 0 {
			n, err := ParseRequest(buf, &req)
			if err != nil {
				b.Fatal(err)
			}
			buf = buf[n:]
		}
	}
}

func BenchmarkScan(b *testing.B) {
	for _, in := range replyInputs() {
		b.Run(in.name, func(b *testing.B) {
			var s ReplyScanner
			b.SetBytes(int64(len(in.data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Scan(in.data, in.cmd); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkValueBlocks(b *testing.B) {
	reply := replyInputs()[2].data
	blocks := 0
	fn := func(_, _ []byte) { blocks++ }
	b.SetBytes(int64(len(reply)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ValueBlocks(reply, fn); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendGet(b *testing.B) {
	keys := [][]byte{[]byte("key:000000000001"), []byte("key:000000000003"), []byte("key:000000000005")}
	name := []byte("get")
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendGet(dst[:0], name, keys...)
	}
}

func BenchmarkStripQuiet(b *testing.B) {
	line := []byte("mg key:000000000001 v f t c q Oabc k\r\n")
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		dst = StripQuiet(dst[:0], line)
	}
}

// TestZeroAllocs: in steady state (a Request, scanner and dst reused)
// nothing on the hot path allocates.
func TestZeroAllocs(t *testing.T) {
	for _, in := range requestInputs() {
		var req Request
		if _, err := ParseRequest(in.data, &req); err != nil { // warm up
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := ParseRequest(in.data, &req); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("ParseRequest %s: %v allocs/op", in.name, allocs)
		}
	}
	// A request arriving in pieces allocates nothing either.
	data := requestInputs()[2].data
	var req Request
	if allocs := testing.AllocsPerRun(100, func() {
		for end := 1; end <= len(data); end += 7 {
			_, _ = ParseRequest(data[:end], &req)
		}
		_, _ = ParseRequest(data, &req)
	}); allocs != 0 {
		t.Errorf("ParseRequest in pieces: %v allocs/op", allocs)
	}
	for _, in := range replyInputs() {
		var s ReplyScanner
		allocs := testing.AllocsPerRun(100, func() {
			for end := 1; end < len(in.data); end += 5 {
				_, _ = s.Scan(in.data[:end], in.cmd)
			}
			if _, err := s.Scan(in.data, in.cmd); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Scan %s: %v allocs/op", in.name, allocs)
		}
	}
	reply := replyInputs()[2].data
	keys := [][]byte{[]byte("a"), []byte("b")}
	name, exp := []byte("get"), []byte("10")
	line := []byte("mg k v q\r\n")
	out := make([]byte, 0, 256)
	blocks := 0
	fn := func(_, _ []byte) { blocks++ }
	if allocs := testing.AllocsPerRun(100, func() {
		_ = ValueBlocks(reply, fn)
		_ = IsErrorReply(reply)
		_ = QuietSuppressed(MetaGet, []byte("EN\r\n"))
		out = AppendGet(out[:0], name, keys...)
		out = AppendGat(out, name, exp, keys...)
		out = AppendServerError(out, "Connection refused")
		out = AppendEnd(out)
		out = StripQuiet(out, line)
	}); allocs != 0 {
		t.Errorf("helpers and encoders: %v allocs/op", allocs)
	}
	if !bytes.Contains(out, []byte("mg k v\r\n")) {
		t.Fatal(string(out))
	}
}
