package testutil

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// sbinDirs lists the directories searched after PATH: the Debian nutcracker
// package installs into /usr/sbin, which is not in an ordinary user's PATH.
func sbinDirs() []string { return []string{"/usr/local/sbin", "/usr/sbin", "/sbin"} }

// Binary returns the path of the program name, looked up in PATH and then
// in /usr/local/sbin, /usr/sbin and /sbin (Debian installs nutcracker in
// /usr/sbin). The program must be listed in [ProgramsFile], the one list
// that scripts/install-deps.sh installs from: an unlisted one fails the
// test, naming the list, so that no test runs a program that a fresh
// machine would not get. A missing program fails the test, naming its
// Debian package; tests never skip silently.
func Binary(t testing.TB, name string) string {
	t.Helper()
	progs, err := programs()
	if err != nil {
		t.Fatalf("reading the program list: %v", err)
	}
	prog, listed := progs[name]
	if !listed {
		t.Fatalf("%s is not in %s, the list of programs tests may run: add it there with its Debian package", name, ProgramsFile)
	}
	path, err := lookBinary(name)
	if err == nil {
		return path
	}
	t.Fatal(missingBinaryMessage(name, prog.Package, inCI()))
	return ""
}

// lookBinary finds name in PATH, then in sbinDirs().
func lookBinary(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err == nil || strings.Contains(name, "/") {
		return path, err
	}
	for _, dir := range sbinDirs() {
		p := filepath.Join(dir, name)
		if fi, statErr := os.Stat(p); statErr == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", err
}

// inCI reports whether the CI environment variable is set to a true value.
func inCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// missingBinaryMessage is Binary's failure text: in CI the image is broken;
// on a workstation the developer is told what to install.
func missingBinaryMessage(name, debianPackage string, ci bool) string {
	switch {
	case debianPackage == "-":
		return fmt.Sprintf("%s not found in PATH or %s; it does not come from a Debian package (see %s)", name, strings.Join(sbinDirs(), ", "), ProgramsFile)
	case ci:
		return fmt.Sprintf("%s not found (CI=true): scripts/install-deps.sh installs the Debian package %s; did make test run it?", name, debianPackage)
	default:
		return fmt.Sprintf("%s not found: apt-get install %s (or run make test, which installs it)", name, debianPackage)
	}
}

// shardproxyBuild builds ./cmd/shardproxy at most once per test process.
//
// This is the package's one cache, and it is immutable once the first call
// returns: linking the binary takes about a second even with a warm build
// cache, which integration packages starting dozens of proxies would
// otherwise pay per test, and a test's own TempDir cannot hold a binary
// that later tests reuse. A failed build is cached too: every caller then
// fails with the same compiler output.
var shardproxyBuild = sync.OnceValues(func() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	reapStaleBuildDirs(os.TempDir())
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", buildDirPrefix, os.Getpid()))
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "shardproxy")
	if err := goBuild(root, "./cmd/shardproxy", bin, raceEnabled); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return bin, nil
})

// buildDirPrefix names the directories that hold built binaries, followed
// by the PID of the test process that built them.
const buildDirPrefix = "shardproxy-testbin-"

// BuildShardproxy builds the ./cmd/shardproxy binary of this module once per
// test process and returns its path. When the test binary has the race
// detector enabled, so has the proxy: [Server]'s cleanup fails the test if
// the proxy reported a data race.
//
// The binary lives in os.TempDir(), in a directory named after the test
// process; nothing runs after the last test to remove it, so each build
// removes the directories of test processes that no longer exist.
func BuildShardproxy(t testing.TB) string {
	t.Helper()
	bin, err := shardproxyBuild()
	if err != nil {
		t.Fatalf("building shardproxy: %v", err)
	}
	return bin
}

// BuildPackage builds the main package pkg of this module, a path relative
// to the module root such as "./internal/segv/testdata/segvprog", into the
// test's temporary directory and returns the binary's path. Unlike
// [BuildShardproxy] it builds without the race detector and caches nothing:
// it is meant for small helper programs.
func BuildPackage(t testing.TB, pkg string) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	if err := goBuild(root, pkg, bin, false); err != nil {
		t.Fatal(err)
	}
	return bin
}

// moduleRoot returns the directory of the main module's go.mod, as reported
// by `go env GOMOD` run in the current directory (the test's package).
func moduleRoot() (string, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("go command not found: %w", err)
	}
	out, err := exec.Command(goCmd, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside a module")
	}
	return filepath.Dir(gomod), nil
}

// goBuild runs `go build -o out pkg` in the module at root, with -race if
// race is set. Its error carries the compiler output.
func goBuild(root, pkg, out string, race bool) error {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("go command not found: %w", err)
	}
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	args = append(args, pkg)
	cmd := exec.Command(goCmd, args...)
	cmd.Dir = root
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s (in %s): %w\n%s", strings.Join(args, " "), root, err, output.Bytes())
	}
	return nil
}

// reapStaleBuildDirs removes the build directories in tmp left behind by
// test processes that have exited.
func reapStaleBuildDirs(tmp string) {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), buildDirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 {
			continue
		}
		// ESRCH means no such process; EPERM means it exists (another user).
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(filepath.Join(tmp, e.Name()))
		}
	}
}
