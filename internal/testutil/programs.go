package testutil

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// ProgramsFile is the one list of the external programs that the demo, the
// tests and the benchmarks run, relative to the module root: each line
// names a program, its Debian package and the make targets that need it.
// scripts/install-deps.sh installs from it, and [Binary] finds only what
// it lists.
const ProgramsFile = "scripts/programs.txt"

// Program is one line of [ProgramsFile].
type Program struct {
	Name    string   // as looked up in PATH
	Package string   // the Debian package; "-" when it does not come from one
	Groups  []string // the make targets (demo, test, bench, ...) that need it
	Line    int
}

// ParsePrograms reads the list's text: blank lines and lines starting
// with # are skipped, and a # later on a line starts a comment.
func ParsePrograms(data []byte) (map[string]Program, error) {
	progs := make(map[string]Program)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(text)
		if len(f) == 0 {
			continue
		}
		if len(f) < 3 {
			return nil, fmt.Errorf("%s:%d: want: program, Debian package, groups; got %q", ProgramsFile, line, sc.Text())
		}
		if old, dup := progs[f[0]]; dup {
			return nil, fmt.Errorf("%s:%d: %s is listed already on line %d", ProgramsFile, line, f[0], old.Line)
		}
		progs[f[0]] = Program{Name: f[0], Package: f[1], Groups: f[2:], Line: line}
	}
	return progs, sc.Err()
}

// programs is the parsed list, read once per test process: like
// shardproxyBuild, a cache that never changes after the first call.
var programs = sync.OnceValues(func() (map[string]Program, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(root, ProgramsFile))
	if err != nil {
		return nil, err
	}
	return ParsePrograms(data)
})

// Programs returns the list in [ProgramsFile], by program name.
func Programs() (map[string]Program, error) { return programs() }

// Library checks that the library spec, "INTERPRETER:MODULE" such as
// "python3:redis" or "ruby:sidekiq", is listed in [ProgramsFile] and loads,
// and returns the path of Debian's interpreter for it (/usr/bin/python3:
// an interpreter earlier in PATH, such as pyenv's, does not see Debian's
// modules). A library that is not listed fails the test naming the list;
// one that does not load fails it naming its package.
func Library(t testing.TB, spec string) string {
	t.Helper()
	progs, err := programs()
	if err != nil {
		t.Fatalf("reading the program list: %v", err)
	}
	lib, listed := progs[spec]
	lang, module, ok := strings.Cut(spec, ":")
	if !listed || !ok {
		t.Fatalf("%s is not in %s, the list of programs and libraries tests may use: add it there as INTERPRETER:MODULE with its Debian package", spec, ProgramsFile)
	}
	interp := filepath.Join("/usr/bin", lang)
	var check []string
	switch lang {
	case "python3":
		check = []string{interp, "-c", "import " + module}
	case "ruby":
		check = []string{interp, "-e", "require '" + module + "'"}
	case "php":
		check = []string{interp, "-r", "if (!extension_loaded('" + module + "')) exit(1);"}
	default:
		t.Fatalf("%s: no way to check a %s library", spec, lang)
	}
	if out, err := exec.Command(check[0], check[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s does not load (%v): %s\n%s", spec, err, missingBinaryMessage(spec, lib.Package, inCI()), out)
	}
	return interp
}
