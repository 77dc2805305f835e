package testutil

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// lookups are the calls that name a program to run, and which argument
// names it: exec's own, and the helpers that look programs up.
var lookups = map[string]int{
	"exec.Command":        0,
	"exec.CommandContext": 1,
	"exec.LookPath":       0,
	"Binary":              1, // testutil.Binary(t, name)
	"StartProcess":        1, // testutil.StartProcess(t, name, ...)
	"Library":             1, // testutil.Library(t, "python3:redis")
	"lookPath":            0, // bench's lookup
}

// lookupFiles are the only places that may look a program up by a name
// that is not a string constant: the lookups themselves.
var lookupFiles = []string{"internal/testutil/binary.go", "bench/main.go"}

// TestProgramsListed fails when Go code in the module runs or looks up a
// program by a name that is not in ProgramsFile, so that a program can
// only be used once it is on the list that a fresh machine installs.
func TestProgramsListed(t *testing.T) {
	progs, err := Programs()
	if err != nil {
		t.Fatal(err)
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		for _, use := range programUses(t, path) {
			checked++
			switch {
			case use.name == "":
				if !slices.Contains(lookupFiles, rel) {
					t.Errorf("%s:%d: %s with a program name that is not a constant: use testutil.Binary(t, \"name\"), which takes it from %s",
						rel, use.line, use.call, ProgramsFile)
				}
			case strings.Contains(use.name, "/"): // a path, not a program looked up in PATH
			default:
				if _, ok := progs[use.name]; !ok {
					t.Errorf("%s:%d: %s runs %q, which is not in %s: add it there with its Debian package",
						rel, use.line, use.call, use.name, ProgramsFile)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 20 {
		t.Errorf("found only %d program lookups in the module: is the scan still looking at the right calls?", checked)
	}
}

// programUse is one call that names a program; name is empty when the
// name is not a constant string (a variable, a path built at run time).
type programUse struct {
	call, name string
	line       int
}

// programUses returns the program lookups in one Go file.
func programUses(t *testing.T, path string) []programUse {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	var uses []programUse
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		name := callName(call.Fun)
		arg, ok := lookups[name]
		if !ok {
			// testutil.Binary and testutil.StartProcess are named by
			// their selector alone.
			if sel, isSel := call.Fun.(*ast.SelectorExpr); isSel {
				name = sel.Sel.Name
				arg, ok = lookups[name]
				ok = ok && (name == "Binary" || name == "StartProcess" || name == "Library")
			}
		}
		if !ok || arg >= len(call.Args) {
			return true
		}
		use := programUse{call: name, line: fset.Position(call.Pos()).Line}
		switch a := call.Args[arg].(type) {
		case *ast.BasicLit:
			if a.Kind == token.STRING {
				use.name, _ = strconv.Unquote(a.Value)
			}
		case *ast.CallExpr:
			// exec.Command(testutil.Binary(t, "x")): the inner call is
			// checked on its own.
			if inner := callName(a.Fun); strings.HasSuffix(inner, "Binary") || strings.HasSuffix(inner, "Library") || inner == "lookPath" {
				return true
			}
		case *ast.Ident, *ast.SelectorExpr, *ast.StarExpr, *ast.IndexExpr:
			// A variable: a path found earlier (by Binary, a build, a
			// flag) or a name the caller passed; only exec.LookPath is a
			// lookup by itself.
			if name != "exec.LookPath" && name != "lookPath" {
				return true
			}
		}
		uses = append(uses, use)
		return true
	})
	return uses
}

// callName returns "pkg.Func" or "Func" for a call's function expression.
func callName(fun ast.Expr) string {
	switch f := fun.(type) {
	case *ast.Ident:
		return f.Name
	case *ast.SelectorExpr:
		if x, ok := f.X.(*ast.Ident); ok {
			return x.Name + "." + f.Sel.Name
		}
	}
	return ""
}

func TestParsePrograms(t *testing.T) {
	good := "# comment\n\nredis-server redis-server demo test\ngo - test # the toolchain\n"
	progs, err := ParsePrograms([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if p := progs["redis-server"]; p.Package != "redis-server" || !slices.Equal(p.Groups, []string{"demo", "test"}) || p.Line != 3 {
		t.Errorf("redis-server: %+v", p)
	}
	if p := progs["go"]; p.Package != "-" || !slices.Equal(p.Groups, []string{"test"}) {
		t.Errorf("go: %+v", p)
	}
	for _, tc := range []struct{ in, want string }{
		{"redis-server redis-server\n", "scripts/programs.txt:1: want: program, Debian package, groups"},
		{"a b test\na c test\n", "scripts/programs.txt:2: a is listed already on line 1"},
	} {
		if _, err := ParsePrograms([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParsePrograms(%q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

// TestProgramsFile checks the list itself: every program names a package
// and only the groups that scripts/install-deps.sh is called with.
func TestProgramsFile(t *testing.T) {
	progs, err := Programs()
	if err != nil {
		t.Fatal(err)
	}
	groups := []string{"demo", "test", "bench", "vectors", "fresh"}
	for _, p := range progs {
		for _, g := range p.Groups {
			if !slices.Contains(groups, g) {
				t.Errorf("%s:%d: %s: group %q is not one of %v", ProgramsFile, p.Line, p.Name, g, groups)
			}
		}
	}
	root, _ := moduleRoot()
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if !strings.Contains(string(mk), "scripts/install-deps.sh "+g) {
			t.Errorf("Makefile never runs scripts/install-deps.sh %s: the group's programs are never installed", g)
		}
	}
}

func TestLibraryUnlisted(t *testing.T) {
	spec := "python3:no_such_module" // a variable: TestProgramsListed rightly rejects the constant
	got := catchFatal(t, func(tb testing.TB) { Library(tb, spec) })
	if !strings.HasPrefix(got, "python3:no_such_module is not in scripts/programs.txt") {
		t.Errorf("Library(%s) failed with %q, want a failure naming the list", spec, got)
	}
}
