package config

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// Address is where a pool listens or where a server is: a TCP host and port
// or a unix socket path.
type Address struct {
	Network string // "tcp" or "unix"

	Host string // tcp: a hostname or IP; IPv6 without brackets
	Port int    // tcp: 1..65535

	Path string      // unix: absolute socket path
	Mode os.FileMode // unix listen only: permissions to set; 0 = not given
}

// String returns the address in the form net.Listen and net.Dial take:
// "host:port", "[::1]:port", or the socket path.
func (a Address) String() string {
	if a.Network == "unix" {
		return a.Path
	}
	return net.JoinHostPort(a.Host, strconv.Itoa(a.Port))
}

// Server is one entry of servers: or sentinels:.
type Server struct {
	Address
	Weight int    // servers: ≥ 1; sentinels: always 1
	Name   string // the optional name after the address; "" if none
	Line   int    // line of the entry in the file
}

// ketamaPort is memcached's port. twemproxy leaves it out of the ring name
// of an unnamed server, for compatibility with libmemcached's ketama
// (conf_add_server in nc_conf.c).
const ketamaPort = 11211

// RingName is the server's name on the hash ring and in stats, computed the
// way twemproxy's conf_add_server does, because key placement depends on it:
// the explicit name if given; else "host:port", or just "host" when the port
// is 11211; for unix sockets the path followed by ":" (twemproxy takes the
// text before the weight, colon included). The weight is never part of it.
//
// An IPv6 host is written without brackets ("::1:6379"): twemproxy names a
// server by the text before its weight, and the only IPv6 form twemproxy can
// actually connect to is the unbracketed one ("[::1]" does not resolve), so
// this is the name that deployments migrating from it have on their rings.
func (s Server) RingName() string {
	switch {
	case s.Name != "":
		return s.Name
	case s.Network == "unix":
		return s.Path + ":"
	case s.Port == ketamaPort:
		return s.Host
	default:
		return s.Host + ":" + strconv.Itoa(s.Port)
	}
}

// Each parser below returns either a value or a problem: a phrase that reads
// after the quoted input, as in `listen "x:0" has port 0; ...`.

// parseListen parses a pool's listen: value, "host:port", "[ipv6]:port" or
// "/path/to/socket [mode]" (nc_conf.c conf_set_listen). A relative socket
// path is not recognised, as in twemproxy.
func parseListen(s string) (Address, string) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return Address{}, "is empty"
	}
	if strings.HasPrefix(fields[0], "/") {
		if len(fields) > 2 {
			return Address{}, "has too many fields (want /path/to/socket [mode], like /tmp/pool.sock 0666)"
		}
		a := Address{Network: "unix", Path: fields[0]}
		if len(fields) == 2 {
			// Stricter than nutcracker, which reads the mode with strtol and
			// so silently takes "abc" or "0999" as 0.
			mode, ok := parseOctal(fields[1])
			if !ok || mode > 0o777 {
				return Address{}, fmt.Sprintf("has an invalid socket mode %q (want octal permissions up to 0777, like 0666)", fields[1])
			}
			a.Mode = os.FileMode(mode)
		}
		return a, ""
	}
	if len(fields) > 1 {
		return Address{}, "has too many fields (want host:port, [ipv6]:port or /path/to/socket [mode])"
	}
	if !strings.Contains(s, ":") {
		return Address{}, "is not host:port, [ipv6]:port or /path/to/socket [mode]"
	}
	host, port, problem := parseHostPort(fields[0])
	if problem == "has no host" {
		// Go would listen on every interface; twemproxy fails to resolve "".
		problem += " (use 0.0.0.0 or [::] for every interface)"
	}
	if problem != "" {
		return Address{}, problem
	}
	return Address{Network: "tcp", Host: host, Port: port}, ""
}

// parseServer parses a servers: entry, "host:port:weight [name]" or
// "/path/to/socket:weight [name]" (nc_conf.c conf_add_server), reading from
// the end as twemproxy does, so that unbracketed IPv6 hosts ("::1:6379:1")
// mean what they mean there.
func parseServer(s string) (Server, string) {
	const want = "host:port:weight [name] or /path/to/socket:weight [name]"
	fields := strings.Fields(s)
	switch len(fields) {
	case 0:
		return Server{}, "is empty"
	case 1, 2:
	default:
		return Server{}, "has too many fields (want " + want + ")"
	}
	srv := Server{}
	if len(fields) == 2 {
		srv.Name = fields[1]
	}
	addr := fields[0]
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return Server{}, "is not " + want
	}
	rest, weight := addr[:i], addr[i+1:]
	if !strings.HasPrefix(rest, "/") && !strings.Contains(rest, ":") {
		// "127.0.0.1:6379" is the likeliest reason to land here.
		return Server{}, fmt.Sprintf("is not %s (is the weight missing? like %s:1)", want, addr)
	}
	w, ok := parseNumber(weight)
	switch {
	case !ok:
		return Server{}, fmt.Sprintf("has an invalid weight %q (weights are whole numbers from 1 to %d)", weight, math.MaxInt32)
	case w == 0:
		return Server{}, "has weight 0 (weights must be at least 1)"
	}
	srv.Weight = w
	if strings.HasPrefix(rest, "/") {
		srv.Address = Address{Network: "unix", Path: rest}
		return srv, ""
	}
	host, port, problem := parseHostPort(rest)
	if problem != "" {
		return Server{}, problem
	}
	srv.Address = Address{Network: "tcp", Host: host, Port: port}
	return srv, ""
}

// parseSentinel parses a sentinels: entry, "host:port [name]"
// (twemproxy-163 conf_add_sentinel). twemproxy-163's format string also
// mentions unix sockets, but its parser rejects any path without a colon, so
// they are not offered here.
func parseSentinel(s string) (Server, string) {
	const want = "host:port [name]"
	fields := strings.Fields(s)
	switch len(fields) {
	case 0:
		return Server{}, "is empty"
	case 1, 2:
	default:
		return Server{}, "has too many fields (want " + want + ")"
	}
	srv := Server{Weight: 1}
	if len(fields) == 2 {
		srv.Name = fields[1]
	}
	addr := fields[0]
	if strings.HasPrefix(addr, "/") {
		return Server{}, "is a unix socket; sentinels are reached over TCP (want " + want + ")"
	}
	if !strings.Contains(addr, ":") {
		return Server{}, "is not " + want
	}
	host, port, problem := parseHostPort(addr)
	if problem != "" {
		if strings.Count(addr, ":") == 2 && !strings.Contains(addr, "[") {
			return Server{}, "is not " + want + " (sentinels have no weight)"
		}
		return Server{}, problem
	}
	srv.Address = Address{Network: "tcp", Host: host, Port: port}
	return srv, ""
}

// parseHostPort splits "host:port" at the last colon. The host may be a
// hostname, an IPv4 address, a bracketed IPv6 address, or an unbracketed one
// (twemproxy parses from the end, so "::1:6379" is host ::1, port 6379).
// Hostnames are checked for shape only: resolving them is the proxy's job,
// at listen or connect time (twemproxy resolves listen addresses while
// parsing; a pure parser should not depend on DNS).
func parseHostPort(hp string) (host string, port int, problem string) {
	i := strings.LastIndexByte(hp, ':')
	if i < 0 {
		return "", 0, "has no port"
	}
	host, ps := hp[:i], hp[i+1:]
	p, ok := parseNumber(ps)
	switch {
	case ps == "":
		return "", 0, "has no port"
	case !ok || p > 65535:
		return "", 0, fmt.Sprintf("has an invalid port %q (ports are 1 to 65535)", ps)
	case p == 0:
		return "", 0, "has port 0 (ports are 1 to 65535)"
	}
	switch {
	case host == "":
		// Stricter than nutcracker for servers: it resolves them lazily, so
		// ":6379:1" passes -t and then never connects.
		return "", 0, "has no host"
	case strings.HasPrefix(host, "[") || strings.HasSuffix(host, "]"):
		inner, ok := strings.CutPrefix(host, "[")
		inner, ok2 := strings.CutSuffix(inner, "]")
		if a, err := netip.ParseAddr(inner); !ok || !ok2 || err != nil || !a.Is6() {
			return "", 0, fmt.Sprintf("has an invalid IPv6 address %q", host)
		}
		host = inner
	case strings.Contains(host, ":"):
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return "", 0, fmt.Sprintf("has an invalid host %q (write IPv6 addresses in brackets, like [::1]:6379)", host)
		}
	default:
		if !validHostname(host) {
			return "", 0, fmt.Sprintf("has an invalid host %q", host)
		}
	}
	return host, p, ""
}

// validHostname accepts the characters of DNS names and IPv4 literals.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '-' || c == '_':
		default:
			return false
		}
	}
	return true
}

// parseNumber parses what twemproxy's nc_atoi accepts: decimal digits only
// (no sign, no spaces, no 0x). Values above MaxInt32 are rejected, stricter
// than nutcracker, which keeps every number in a C int and silently
// overflows.
func parseNumber(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > math.MaxInt32 {
			return 0, false
		}
	}
	return n, true
}

// parseOctal parses a file mode written in octal digits only.
func parseOctal(s string) (uint32, bool) {
	if s == "" || len(s) > 6 {
		return 0, false
	}
	var n uint32
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '7' {
			return 0, false
		}
		n = n*8 + uint32(c-'0')
	}
	return n, true
}
