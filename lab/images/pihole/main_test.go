package main

import (
	"net/netip"
	"os"
	"testing"
)

func TestConfig(t *testing.T) {
	host, _ := os.Hostname()
	for _, c := range []struct {
		name    string
		args    []string
		env     map[string]string
		listen  string
		node    string
		answer  string
		wantErr bool
	}{
		{"flags", []string{"--answer", "203.0.113.53", "--node", "n1"}, nil, ":53", "n1", "203.0.113.53", false},
		{"downward API", nil, map[string]string{"ANSWER": "2001:db8::53", "NODE_NAME": "node2"}, ":53", "node2", "2001:db8::53", false},
		{"flag over env", []string{"--answer", "203.0.113.54", "--listen", "127.0.0.1:5353"},
			map[string]string{"ANSWER": "203.0.113.53", "NODE_NAME": "node1"}, "127.0.0.1:5353", "node1", "203.0.113.54", false},
		{"no node: the hostname", []string{"--answer", "203.0.113.53"}, nil, ":53", host, "203.0.113.53", false},
		{"no answer", nil, map[string]string{"NODE_NAME": "node1"}, "", "", "", true},
		{"bad answer", []string{"--answer", "pihole"}, nil, "", "", "", true},
		{"stray argument", []string{"--answer", "203.0.113.53", "extra"}, nil, "", "", "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := config(c.args, func(k string) string { return c.env[k] })
			if c.wantErr {
				if err == nil {
					t.Fatalf("config %+v, want an error", cfg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Listen != c.listen || cfg.Node != c.node || cfg.Answer != netip.MustParseAddr(c.answer) || cfg.FreeBind {
				t.Errorf("config %+v", cfg)
			}
		})
	}
}
