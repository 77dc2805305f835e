package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics and keeps its contract on any
// input: a Config or an error, never both; every problem names the file.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yml")
	files = append(files, "../../conf/nutcracker.yml")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, tc := range badConfigs {
		f.Add([]byte(tc.yaml))
	}
	for _, tc := range goodConfigs {
		f.Add([]byte(tc.yaml))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("f.yml", data)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v", cfg, err)
		}
		if err != nil {
			es, ok := err.(Errors)
			if !ok || len(es) == 0 {
				t.Fatalf("error %T %v", err, err)
			}
			for _, e := range es {
				if e.File != "f.yml" || e.Msg == "" || e.Line < 0 {
					t.Fatalf("problem %+v", e)
				}
			}
			return
		}
		if len(cfg.Pools) == 0 {
			t.Fatal("a config without pools")
		}
		for _, p := range cfg.Pools {
			if p.Listen.Network == "" || (len(p.Servers) == 0 && len(p.Groups) == 0) {
				t.Fatalf("pool %+v", p)
			}
			for _, s := range p.Servers {
				if s.Weight < 1 || (s.Network == "tcp" && (s.Port < 1 || s.Port > 65535)) {
					t.Fatalf("server %+v", s)
				}
			}
			if len(p.HashTag) != 0 && len(p.HashTag) != 2 {
				t.Fatalf("hash_tag %q", p.HashTag)
			}
		}
	})
}
