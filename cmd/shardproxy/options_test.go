package main

import (
	"errors"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	def := defaultOptions()
	tests := []struct {
		name string
		args []string
		want func(o *options)
	}{
		{"defaults", nil, func(o *options) {}},
		{"short switches", []string{"-t", "-d", "-D", "-V", "-h"}, func(o *options) {
			o.testConf, o.daemonize, o.describeStats, o.version, o.help = true, true, true, true, true
		}},
		{"bundled switches", []string{"-tdD"}, func(o *options) { o.testConf, o.daemonize, o.describeStats = true, true, true }},
		{"question mark is help", []string{"-?"}, func(o *options) { o.help = true }},
		{"long switches", []string{"--help", "--version", "--test-conf", "--daemonize", "--describe-stats"}, func(o *options) {
			o.help, o.version, o.testConf, o.daemonize, o.describeStats = true, true, true, true, true
		}},
		{"separate values", []string{"-v", "7", "-o", "/tmp/log", "-c", "x.yml", "-s", "2000", "-a", "127.0.0.1", "-i", "100", "-p", "/tmp/pid", "-m", "512"}, func(o *options) {
			o.verbosity, o.output, o.confFile, o.statsPort, o.statsAddr, o.statsInterval, o.pidFile, o.mbufSize = 7, "/tmp/log", "x.yml", 2000, "127.0.0.1", 100, "/tmp/pid", 512
		}},
		{"attached values", []string{"-v11", "-cx.yml", "-m16777216"}, func(o *options) { o.verbosity, o.confFile, o.mbufSize = 11, "x.yml", 16777216 }},
		{"switch then value in one word", []string{"-tc", "x.yml"}, func(o *options) { o.testConf, o.confFile = true, "x.yml" }},
		{"long equals", []string{"--verbose=0", "--conf-file=a.yml", "--stats-port=1", "--stats-addr=::1", "--stats-interval=0", "--pid-file=p", "--mbuf-size=1024", "--output=o"}, func(o *options) {
			o.verbosity, o.confFile, o.statsPort, o.statsAddr, o.statsInterval, o.pidFile, o.mbufSize, o.output = 0, "a.yml", 1, "::1", 0, "p", 1024, "o"
		}},
		{"long separate", []string{"--conf-file", "b.yml"}, func(o *options) { o.confFile = "b.yml" }},
		{"long prefix", []string{"--verb=9", "--conf", "c.yml"}, func(o *options) { o.verbosity, o.confFile = 9, "c.yml" }},
		{"double dash ends options", []string{"-t", "--"}, func(o *options) { o.testConf = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseArgs(tt.args)
			if err != nil {
				t.Fatalf("parseArgs(%q): %v", tt.args, err)
			}
			want := def
			tt.want(&want)
			if got != want {
				t.Errorf("parseArgs(%q) =\n %+v, want\n %+v", tt.args, got, want)
			}
		})
	}
}

func TestParseArgsErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-x"}, "invalid option -- 'x'"},
		{[]string{"-tx"}, "invalid option -- 'x'"},
		{[]string{"--bogus"}, "unrecognized option '--bogus'"},
		{[]string{"--s"}, "option '--s' is ambiguous"},
		{[]string{"--help=1"}, "option '--help' doesn't allow an argument"},
		{[]string{"-v"}, "option -v requires a number"},
		{[]string{"-c"}, "option -c requires a file name"},
		{[]string{"--conf-file"}, "option -c requires a file name"},
		{[]string{"-a"}, "option -a requires a string"},
		{[]string{"-v", "abc"}, "option -v requires a number"},
		{[]string{"-v", "-1"}, "option -v requires a number"},
		{[]string{"-v", "12"}, "option -v value 12 is not between 0 and 11"},
		{[]string{"-s", "abc"}, "option -s requires a number"},
		{[]string{"-s", "0"}, "option -s value 0 is not a valid port"},
		{[]string{"-s", "65536"}, "option -s value 65536 is not a valid port"},
		{[]string{"-i", "x"}, "option -i requires a number"},
		{[]string{"-m", "511"}, "mbuf chunk size must be between 512 and 16777216 bytes"},
		{[]string{"-m", "16777217"}, "mbuf chunk size must be between 512 and 16777216 bytes"},
		{[]string{"-m", "99999999999999999999999"}, "option -m value 99999999999999999999999 is out of range"},
		{[]string{"extra"}, "unexpected argument 'extra'"},
		{[]string{"--", "extra"}, "unexpected argument 'extra'"},
	}
	for _, tt := range tests {
		_, err := parseArgs(tt.args)
		if err == nil {
			t.Errorf("parseArgs(%q) succeeded, want error %q", tt.args, tt.want)
			continue
		}
		var ue *usageError
		if !errors.As(err, &ue) {
			t.Errorf("parseArgs(%q) error %v is not a usageError", tt.args, err)
		}
		if got := err.Error(); got != tt.want {
			t.Errorf("parseArgs(%q) error = %q, want %q", tt.args, got, tt.want)
		}
	}
}

func TestUsageTextShape(t *testing.T) {
	u := usageText()
	for _, flag := range []string{"-h, --help", "-V, --version", "-t, --test-conf", "-d, --daemonize", "-D, --describe-stats",
		"-v, --verbose=N", "-o, --output=S", "-c, --conf-file=S", "-s, --stats-port=N", "-a, --stats-addr=S",
		"-i, --stats-interval=N", "-p, --pid-file=S", "-m, --mbuf-size=N"} {
		if !strings.Contains(u, "  "+flag+" ") {
			t.Errorf("usage lacks %q", flag)
		}
	}
	if !strings.HasPrefix(u, "Usage: shardproxy [-?hVdDt] [-v verbosity level] [-o output file]\n") {
		t.Errorf("usage first line: %q", strings.SplitN(u, "\n", 2)[0])
	}
}
