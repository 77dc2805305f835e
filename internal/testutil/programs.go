package testutil

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
