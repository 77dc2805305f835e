package logging

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLevelsFollowNutcracker(t *testing.T) {
	// slog's own levels sit where nutcracker's of the same name are.
	if Level(Err) != slog.LevelError || Level(Warn) != slog.LevelWarn || Level(Info) != slog.LevelInfo || Level(Debug) != slog.LevelDebug {
		t.Fatal("slog levels do not line up with nutcracker's ERR/WARN/INFO/DEBUG")
	}
	if Level(Notice) != LevelNotice {
		t.Fatalf("Level(Notice) = %v, want %v", Level(Notice), LevelNotice)
	}
	for v := MinVerbosity; v < MaxVerbosity; v++ {
		if Level(v) <= Level(v+1) {
			t.Errorf("Level(%d)=%v not above Level(%d)=%v", v, Level(v), v+1, Level(v+1))
		}
	}
	if Level(-3) != Level(0) || Level(99) != Level(11) {
		t.Error("out-of-range verbosity is not clamped")
	}
}

func TestVerbosityFilters(t *testing.T) {
	var buf bytes.Buffer
	vb := NewVerbosity(Notice)
	l := NewLogger(&buf, vb)
	l.Info("connection")
	Log(l, Notice, "started")
	if got := buf.String(); strings.Contains(got, "connection") || !strings.Contains(got, "level=NOTICE msg=started") {
		t.Fatalf("at verbosity 5: %q", got)
	}
	buf.Reset()
	if v := vb.Add(1); v != Info {
		t.Fatalf("Add(1) = %d", v)
	}
	l.Info("connection")
	if !strings.Contains(buf.String(), "level=INFO msg=connection") {
		t.Fatalf("at verbosity 6: %q", buf.String())
	}
	buf.Reset()
	vb.Set(PVerb)
	Log(l, PVerb, "very")
	Log(l, Crit, "crit")
	if got := buf.String(); !strings.Contains(got, "level=PVERB msg=very") || !strings.Contains(got, "level=CRIT msg=crit") {
		t.Fatalf("at verbosity 11: %q", got)
	}
	if vb.Add(5) != MaxVerbosity || vb.Set(-1) != MinVerbosity {
		t.Fatal("verbosity not clamped")
	}
}

func TestFileReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "proxy.log")
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("two\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(rotated); string(b) != "one\n" {
		t.Errorf("rotated file = %q", b)
	}
	if b, _ := os.ReadFile(path); string(b) != "two\n" {
		t.Errorf("new file = %q", b)
	}
}

func TestStderrFile(t *testing.T) {
	for _, p := range []string{"", "stderr"} {
		f, err := OpenFile(p)
		if err != nil || f.Path() != "" || f.Reopen() != nil || f.Close() != nil {
			t.Errorf("OpenFile(%q) = %v, %v", p, f, err)
		}
	}
	if _, err := OpenFile(filepath.Join(t.TempDir(), "no", "such", "dir", "x.log")); err == nil {
		t.Error("opening a log in a missing directory succeeded")
	}
}
