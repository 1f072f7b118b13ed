package router

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseBFD(t *testing.T) {
	base := "asn: 64512\nrouterID: 198.51.100.1\nimport: {prefixes: [203.0.113.0/24]}\n"
	def := BFD{Enabled: true, MinTx: 300 * time.Millisecond, MinRx: 300 * time.Millisecond, Multiplier: 3}
	tests := []struct {
		name, yaml  string
		static, dyn BFD
	}{
		{"absent", "neighbors:\n  - {address: 198.51.100.3, peerASN: 1}\n", BFD{}, BFD{}},
		{"empty block takes the defaults", "neighbors:\n  - {address: 198.51.100.3, peerASN: 1, bfd: {}}\n", def, BFD{}},
		{"null block is no bfd", "neighbors:\n  - {address: 198.51.100.3, peerASN: 1, bfd: }\n", BFD{}, BFD{}},
		{"all fields", "neighbors:\n  - address: 198.51.100.3\n    peerASN: 1\n    bfd: {minTx: 50ms, minRx: 100ms, multiplier: 5, passive: true}\n",
			BFD{Enabled: true, MinTx: 50 * time.Millisecond, MinRx: 100 * time.Millisecond, Multiplier: 5, Passive: true}, BFD{}},
		{"dynamic range", "dynamicNeighbors:\n  - {prefix: 198.51.100.0/24, peerASN: 1, bfd: {minTx: 1s}}\n",
			BFD{}, BFD{Enabled: true, MinTx: time.Second, MinRx: 300 * time.Millisecond, Multiplier: 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("b.yaml", []byte(base+tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Neighbors) > 0 && c.Neighbors[0].BFD != tc.static {
				t.Errorf("neighbor bfd %+v, want %+v", c.Neighbors[0].BFD, tc.static)
			}
			if len(c.DynamicNeighbors) > 0 && c.DynamicNeighbors[0].BFD != tc.dyn {
				t.Errorf("dynamic bfd %+v, want %+v", c.DynamicNeighbors[0].BFD, tc.dyn)
			}
		})
	}
}

func TestParseBFDErrors(t *testing.T) {
	base := "asn: 64512\nrouterID: 198.51.100.1\nimport: {prefixes: [203.0.113.0/24]}\n"
	n := func(bfd string) string {
		return base + "neighbors:\n  - {address: 198.51.100.3, peerASN: 1, bfd: " + bfd + "}\n"
	}
	tests := []struct{ name, yaml, want string }{
		{"too fast", n("{minTx: 1ms}"), "b.yaml:5: neighbors[0].bfd.minTx: 1ms: must be between 10ms and 1m0s"},
		{"bare number is seconds", n("{minRx: 300}"), "neighbors[0].bfd.minRx: 5m0s: must be between 10ms and 1m0s (a bare number is seconds: write units, 300ms)"},
		{"not a duration", n("{minTx: fast}"), "neighbors[0].bfd.minTx: \"fast\" is not a duration"},
		{"multiplier zero", n("{multiplier: 0}"), "neighbors[0].bfd.multiplier: \"0\" is not a whole number in 1..255"},
		{"multiplier too big", n("{multiplier: 256}"), "neighbors[0].bfd.multiplier: \"256\" is not a whole number in 1..255"},
		{"passive not a bool", n("{passive: maybe}"), "neighbors[0].bfd.passive: \"maybe\" is not true or false"},
		{"unknown key", n("{minTX: 50ms}"), "neighbors[0].bfd.minTX: unknown key (known here: minRx, minTx, multiplier, passive)"},
		{"not a mapping", n("true"), "neighbors[0].bfd: must be a mapping"},
		{"dynamic", base + "dynamicNeighbors:\n  - {prefix: 198.51.100.0/24, peerASN: 1, bfd: {minTx: 2m}}\n", "dynamicNeighbors[0].bfd.minTx: 2m0s: must be between"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("b.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\ndoes not contain %q", err, tc.want)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatal("no FieldError in the chain")
			}
		})
	}
}

// A bfd-only edit retunes BFD and keeps the BGP session.
func TestPlanReloadBFD(t *testing.T) {
	base := "asn: 64512\nrouterID: 198.51.100.1\nimport: {prefixes: [203.0.113.0/24]}\n"
	parse := func(s string) *Config {
		c, err := Parse("r.yaml", []byte(base+s))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	old := parse("neighbors:\n  - {address: 198.51.100.3, peerASN: 1}\ndynamicNeighbors:\n  - {prefix: 198.51.100.0/24, peerASN: 1}\n")
	cur := parse("neighbors:\n  - {address: 198.51.100.3, peerASN: 1, bfd: {}}\ndynamicNeighbors:\n  - {prefix: 198.51.100.0/24, peerASN: 1, bfd: {multiplier: 5}}\n")
	p := PlanReload(old, cur)
	if !p.BFD || len(p.Restart) != 0 || len(p.RestartRanges) != 0 || len(p.Keep) != 1 {
		t.Fatalf("plan %+v", p)
	}
	if p := PlanReload(cur, cur); p.BFD {
		t.Fatalf("no change, plan %+v", p)
	}
}
