package main

// The new process's side of a binary upgrade (upgrade.go): what it
// inherited, found through the environment, and its answer to the old
// process.

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

const (
	// listenFDsEnv lists the sockets handed to the new process as
	// comma-separated "fd=key" items, key being proxy.ListenKey's
	// "tcp:host:port" or "unix:path", or statsKey. In a key, "%" and ","
	// are written "%25" and "%2C" (a socket path may hold a comma).
	listenFDsEnv = "SHARDPROXY_LISTEN_FDS"
	// upgradeReadyEnv names the descriptor of the pipe on which the new
	// process answers "ok" once it serves, or says why it could not start.
	upgradeReadyEnv = "SHARDPROXY_UPGRADE_READY_FD"
	// statsKey is the stats socket's key in listenFDsEnv; pool keys begin
	// with "tcp:" or "unix:", so it cannot clash with one.
	statsKey = "stats"
	// readyFD is the readiness pipe's descriptor in the new process; the
	// sockets follow it.
	readyFD = 3
)

// fdKey is one handed-over socket: its descriptor in the new process and
// the address it listens on.
type fdKey struct {
	fd  int
	key string
}

// formatListenFDs renders items as listenFDsEnv's value.
func formatListenFDs(items []fdKey) string {
	esc := strings.NewReplacer("%", "%25", ",", "%2C")
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = strconv.Itoa(it.fd) + "=" + esc.Replace(it.key)
	}
	return strings.Join(parts, ",")
}

// parseListenFDs parses listenFDsEnv's value. Every descriptor must be
// above the readiness pipe's, and no descriptor or key may come twice.
func parseListenFDs(s string) ([]fdKey, error) {
	if s == "" {
		return nil, nil
	}
	var items []fdKey
	fds := make(map[int]bool)
	keys := make(map[string]bool)
	for item := range strings.SplitSeq(s, ",") {
		fdText, esc, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("%s: %q is not fd=key", listenFDsEnv, item)
		}
		fd, err := strconv.Atoi(fdText)
		if err != nil || fd <= readyFD || strings.TrimLeft(fdText, "0123456789") != "" {
			return nil, fmt.Errorf("%s: %q: descriptor %q is not a number above %d", listenFDsEnv, item, fdText, readyFD)
		}
		key, err := unescapeKey(esc)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", listenFDsEnv, item, err)
		}
		if key != statsKey && !strings.HasPrefix(key, "tcp:") && !strings.HasPrefix(key, "unix:") {
			return nil, fmt.Errorf("%s: %q: key %q is not tcp:…, unix:… or %s", listenFDsEnv, item, key, statsKey)
		}
		if fds[fd] || keys[key] {
			return nil, fmt.Errorf("%s: %q: descriptor or key given twice", listenFDsEnv, item)
		}
		fds[fd], keys[key] = true, true
		items = append(items, fdKey{fd: fd, key: key})
	}
	return items, nil
}

// unescapeKey undoes formatListenFDs's escaping; any other use of "%" is
// an error.
func unescapeKey(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		switch code := strings.ToUpper(s[i+1 : min(i+3, len(s))]); code {
		case "25":
			b.WriteByte('%')
		case "2C":
			b.WriteByte(',')
		default:
			return "", fmt.Errorf("bad escape %q in key", s[i:min(i+3, len(s))])
		}
		i += 2
	}
	return b.String(), nil
}

// handover is what a process started by a binary upgrade inherited: the
// listening sockets and the pipe to answer on.
type handover struct {
	pipe      *os.File            // the readiness pipe; nil if it was unusable
	listeners map[string]*os.File // pool sockets by proxy.ListenKey
	stats     *os.File            // the stats socket, or nil
	err       error               // a malformed hand-over: the start fails with it
}

// inheritedHandover returns the hand-over when this process was started
// by a binary upgrade, else nil. It clears the environment variables, so
// that a later upgrade started from this process sets its own, and marks
// the descriptors close-on-exec, so that they do not leak into it.
func inheritedHandover() *handover {
	readyText, ok := os.LookupEnv(upgradeReadyEnv)
	fdsText := os.Getenv(listenFDsEnv)
	os.Unsetenv(upgradeReadyEnv)
	os.Unsetenv(listenFDsEnv)
	if !ok {
		return nil
	}
	h := &handover{listeners: make(map[string]*os.File)}
	if fd, err := strconv.Atoi(readyText); err == nil && fd == readyFD {
		syscall.CloseOnExec(fd)
		h.pipe = os.NewFile(uintptr(fd), "upgrade-ready")
	} else {
		h.err = fmt.Errorf("%s=%q: want %d", upgradeReadyEnv, readyText, readyFD)
		return h
	}
	items, err := parseListenFDs(fdsText)
	if err != nil {
		h.err = err
		return h
	}
	for _, it := range items {
		syscall.CloseOnExec(it.fd)
		f := os.NewFile(uintptr(it.fd), it.key)
		if it.key == statsKey {
			h.stats = f
		} else {
			h.listeners[it.key] = f
		}
	}
	return h
}

// statsListener returns the inherited stats socket as a listener, or nil
// if there is none (the stats server then binds -a/-s itself).
func (h *handover) statsListener() (net.Listener, error) {
	if h.stats == nil {
		return nil, nil
	}
	defer h.stats.Close()
	ln, err := net.FileListener(h.stats)
	if err != nil {
		return nil, fmt.Errorf("inherited stats socket: %w", err)
	}
	return ln, nil
}

// ready tells the old process to stop accepting: this one serves.
func (h *handover) ready() { h.answer("ok") }

// fail tells the old process why this one cannot take over.
func (h *handover) fail(err error) { h.answer(err.Error()) }

func (h *handover) answer(msg string) {
	if h.pipe == nil {
		return
	}
	_, _ = h.pipe.WriteString(msg)
	h.pipe.Close()
	h.pipe = nil
}
