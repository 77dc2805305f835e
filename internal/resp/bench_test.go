package resp

import (
	"bytes"
	"strconv"
	"testing"
)

// The messages of the hot path, one per kind, for the benchmarks and the
// allocation test.
func requestInputs() []struct {
	name string
	data []byte
} {
	mset := [][]byte{[]byte("MSET")}
	for i := range 10 {
		mset = append(mset, []byte("key:"+strconv.Itoa(i)), []byte("value:"+strconv.Itoa(i)))
	}
	return []struct {
		name string
		data []byte
	}{
		{"GET", AppendCommand(nil, []byte("GET"), []byte("key:000000000001"))},
		{"SET100", AppendCommand(nil, []byte("SET"), []byte("key:000000000001"), bytes.Repeat([]byte("v"), 100))},
		{"MSET10", AppendCommand(nil, mset...)},
		{"InlinePING", []byte("PING\r\n")},
		{"InlineQuoted", []byte(`SET "key one" 'value \'two\''` + "\r\n")},
	}
}

func replyInputs() []struct {
	name string
	data []byte
} {
	arr := AppendArrayHeader(nil, 10)
	for i := range 10 {
		arr = AppendBulkString(arr, "value:"+strconv.Itoa(i))
	}
	return []struct {
		name string
		data []byte
	}{
		{"OK", AppendSimple(nil, "OK")},
		{"Bulk100", AppendBulk(nil, bytes.Repeat([]byte("v"), 100))},
		{"Array10", arr},
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

// BenchmarkParseRequestPipeline parses 100 pipelined GETs from one buffer,
// the way a session reads a burst.
func BenchmarkParseRequestPipeline(b *testing.B) {
	var data []byte
	for i := range 100 {
		data = AppendCommand(data, []byte("GET"), []byte("key:"+strconv.Itoa(i)))
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
				if _, err := s.Scan(in.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkArrayElements(b *testing.B) {
	arr := replyInputs()[2].data
	dst := make([][]byte, 0, 10)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = ArrayElements(arr, dst); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendCommand(b *testing.B) {
	args := [][]byte{[]byte("MGET"), []byte("key:1"), []byte("key:3"), []byte("key:5")}
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendCommand(dst[:0], args...)
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
				_, _ = s.Scan(in.data[:end])
			}
			if _, err := s.Scan(in.data); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Scan %s: %v allocs/op", in.name, allocs)
		}
	}
	arr := replyInputs()[2].data
	dst := make([][]byte, 0, 10)
	args := [][]byte{[]byte("GET"), []byte("k")}
	out := make([]byte, 0, 256)
	if allocs := testing.AllocsPerRun(100, func() {
		dst, _ = ArrayElements(arr, dst)
		_, _ = ParseInteger([]byte(":12\r\n"))
		out = AppendCommand(out[:0], args...)
		out = AppendError(out, "ERR x")
		out = AppendSimple(out, "OK")
		out = AppendInteger(out, -12345)
		out = AppendBulkString(out, "v")
		out = AppendNullBulk(out)
	}); allocs != 0 {
		t.Errorf("helpers and encoders: %v allocs/op", allocs)
	}
}
