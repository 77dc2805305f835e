package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/shardproxy/shardproxy/internal/logging"
)

// Defaults, as in nutcracker's nc.c (upstream, not the Debian build whose
// defaults point at /etc, /var/log and /run).
const (
	defaultConfFile      = "conf/nutcracker.yml"
	defaultStatsPort     = 22222
	defaultStatsAddr     = "0.0.0.0"
	defaultStatsInterval = 30000 // ms
	defaultMbufSize      = 16384
	minMbufSize          = 512
	maxMbufSize          = 16 * 1024 * 1024
)

// options are the command-line settings, nutcracker's flags one for one.
type options struct {
	help, version, testConf, daemonize, describeStats bool

	verbosity     int
	output        string // "" = standard error
	confFile      string
	statsPort     int
	statsAddr     string
	statsInterval int // ms
	pidFile       string
	mbufSize      int
}

func defaultOptions() options {
	return options{
		verbosity:     logging.DefaultVerbosity,
		confFile:      defaultConfFile,
		statsPort:     defaultStatsPort,
		statsAddr:     defaultStatsAddr,
		statsInterval: defaultStatsInterval,
		mbufSize:      defaultMbufSize,
	}
}

// flagSpec describes one option the way getopt_long sees it.
type flagSpec struct {
	short byte
	long  string
	arg   string // "" for a switch; else what the value is: "number", "file name", "string"
	set   func(o *options, val string) error
}

// usageError is a command-line error: the caller prints it, then the usage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErr(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// number parses a non-negative decimal integer as nutcracker's nc_atoi does
// (digits only, no sign, no spaces).
func number(flag byte, val string) (int, error) {
	if val == "" || strings.TrimLeft(val, "0123456789") != "" {
		return 0, usageErr("option -%c requires a number", flag)
	}
	n, err := strconv.Atoi(val)
	if err != nil {
		return 0, usageErr("option -%c value %s is out of range", flag, val)
	}
	return n, nil
}

var flagSpecs = []flagSpec{
	{'h', "help", "", func(o *options, _ string) error { o.help = true; return nil }},
	// nutcracker's usage line lists -? but its getopt rejects it; here it is help.
	{'?', "", "", func(o *options, _ string) error { o.help = true; return nil }},
	{'V', "version", "", func(o *options, _ string) error { o.version = true; return nil }},
	{'t', "test-conf", "", func(o *options, _ string) error { o.testConf = true; return nil }},
	{'d', "daemonize", "", func(o *options, _ string) error { o.daemonize = true; return nil }},
	{'D', "describe-stats", "", func(o *options, _ string) error { o.describeStats = true; return nil }},
	{'v', "verbose", "number", func(o *options, val string) error {
		n, err := number('v', val)
		if err != nil {
			return err
		}
		if n > logging.MaxVerbosity {
			return usageErr("option -v value %d is not between %d and %d", n, logging.MinVerbosity, logging.MaxVerbosity)
		}
		o.verbosity = n
		return nil
	}},
	{'o', "output", "file name", func(o *options, val string) error { o.output = val; return nil }},
	{'c', "conf-file", "file name", func(o *options, val string) error { o.confFile = val; return nil }},
	{'s', "stats-port", "number", func(o *options, val string) error {
		n, err := number('s', val)
		if err != nil {
			return err
		}
		if n < 1 || n > 65535 {
			return usageErr("option -s value %d is not a valid port", n)
		}
		o.statsPort = n
		return nil
	}},
	{'a', "stats-addr", "string", func(o *options, val string) error { o.statsAddr = val; return nil }},
	{'i', "stats-interval", "number", func(o *options, val string) error {
		n, err := number('i', val)
		if err != nil {
			return err
		}
		o.statsInterval = n
		return nil
	}},
	{'p', "pid-file", "file name", func(o *options, val string) error { o.pidFile = val; return nil }},
	{'m', "mbuf-size", "number", func(o *options, val string) error {
		n, err := number('m', val)
		if err != nil {
			return err
		}
		if n < minMbufSize || n > maxMbufSize {
			return usageErr("mbuf chunk size must be between %d and %d bytes", minMbufSize, maxMbufSize)
		}
		o.mbufSize = n
		return nil
	}},
}

// parseArgs parses args (without the program name) as getopt_long does for
// nutcracker's "hVtdDv:o:c:s:i:a:p:m:": bundled switches (-tdD), attached or
// separate values (-v6, -v 6), --long=value and --long value, unambiguous
// long prefixes (--verb), and "--" ending the options. Unlike nutcracker,
// stray arguments are an error rather than silently ignored.
func parseArgs(args []string) (options, error) {
	o := defaultOptions()
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			if i+1 < len(args) {
				return o, usageErr("unexpected argument '%s'", args[i+1])
			}
			return o, nil
		case strings.HasPrefix(arg, "--"):
			name, val, hasVal := strings.Cut(arg[2:], "=")
			spec, err := lookupLong(name)
			if err != nil {
				return o, err
			}
			if spec.arg == "" {
				if hasVal {
					return o, usageErr("option '--%s' doesn't allow an argument", spec.long)
				}
				_ = spec.set(&o, "")
				continue
			}
			if !hasVal {
				if i+1 >= len(args) {
					return o, usageErr("option -%c requires a %s", spec.short, spec.arg)
				}
				i++
				val = args[i]
			}
			if err := spec.set(&o, val); err != nil {
				return o, err
			}
		case strings.HasPrefix(arg, "-") && len(arg) > 1:
			for j := 1; j < len(arg); j++ {
				spec := lookupShort(arg[j])
				if spec == nil {
					return o, usageErr("invalid option -- '%c'", arg[j])
				}
				if spec.arg == "" {
					_ = spec.set(&o, "")
					continue
				}
				val := arg[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return o, usageErr("option -%c requires a %s", spec.short, spec.arg)
					}
					i++
					val = args[i]
				}
				if err := spec.set(&o, val); err != nil {
					return o, err
				}
				break
			}
		default:
			return o, usageErr("unexpected argument '%s'", arg)
		}
	}
	return o, nil
}

func lookupShort(c byte) *flagSpec {
	for i := range flagSpecs {
		if flagSpecs[i].short == c {
			return &flagSpecs[i]
		}
	}
	return nil
}

// lookupLong finds a long option by its full name or an unambiguous prefix.
func lookupLong(name string) (*flagSpec, error) {
	var found *flagSpec
	for i := range flagSpecs {
		s := &flagSpecs[i]
		if s.long == "" {
			continue
		}
		if s.long == name {
			return s, nil
		}
		if name != "" && strings.HasPrefix(s.long, name) {
			if found != nil {
				return nil, usageErr("option '--%s' is ambiguous", name)
			}
			found = s
		}
	}
	if found == nil {
		return nil, usageErr("unrecognized option '--%s'", name)
	}
	return found, nil
}

// usageText is nutcracker's usage screen with shardproxy's name.
func usageText() string {
	return fmt.Sprintf(`Usage: shardproxy [-?hVdDt] [-v verbosity level] [-o output file]
                  [-c conf file] [-s stats port] [-a stats addr]
                  [-i stats interval] [-p pid file] [-m mbuf size]

Options:
  -h, --help             : this help
  -V, --version          : show version and exit
  -t, --test-conf        : test configuration for syntax errors and exit
  -d, --daemonize        : run as a daemon
  -D, --describe-stats   : print stats description and exit
  -v, --verbose=N        : set logging level (default: %d, min: %d, max: %d)
  -o, --output=S         : set logging file (default: stderr)
  -c, --conf-file=S      : set configuration file (default: %s)
  -s, --stats-port=N     : set stats monitoring port (default: %d)
  -a, --stats-addr=S     : set stats monitoring ip (default: %s)
  -i, --stats-interval=N : set stats aggregation interval in msec (default: %d msec)
  -p, --pid-file=S       : set pid file (default: off)
  -m, --mbuf-size=N      : set size of mbuf chunk in bytes (default: %d bytes)

`, logging.DefaultVerbosity, logging.MinVerbosity, logging.MaxVerbosity, defaultConfFile,
		defaultStatsPort, defaultStatsAddr, defaultStatsInterval, defaultMbufSize)
}
