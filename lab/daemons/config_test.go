package daemons

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab/labtest"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the renderers")

// refConfig exercises every knob: an iBGP IPv4 neighbour that is passive
// with TCP-MD5, an eBGP IPv6 neighbour carrying only IPv6, custom timers.
func refConfig() Config {
	return Config{
		ASN: 64512, RouterID: addr("198.51.100.1"), Local4: addr("198.51.100.1"), Local6: addr("2001:db8::1"),
		HoldTime: 30 * time.Second, ConnectRetry: 2 * time.Second, FIB: true,
		Neighbors: []Neighbor{
			{Address: p11, ASN: 64512, Passive: true, Password: "lab-secret"},
			{Address: addr("2001:db8::12"), ASN: 64513, Families: []Family{IPv6}},
		},
	}
}

// renders returns every file the launchers write for c, as if in dir.
func renders(t *testing.T, c Config, dir string) map[string]string {
	t.Helper()
	exa, err := exaConfig(c, filepath.Join(dir, "helper.sh"))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"gobgpd.toml": goBGPConfig(c),
		"bird.conf":   birdConfig(c, dir),
		"bgpd.conf":   frrBGPConfig(c),
		"exabgp.conf": exa,
		"exabgp.env":  exaEnv(c),
	}
}

// TestConfigGolden pins the rendered configs: a change to what the
// daemons are told shows up in review as a diff of these files.
func TestConfigGolden(t *testing.T) {
	for name, got := range renders(t, refConfig(), "/lab") {
		path := filepath.Join("testdata", "golden", name)
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -run TestConfigGolden -update)", err)
		}
		if got != string(want) {
			t.Errorf("%s differs from %s:\n%s", name, path, got)
		}
	}
}

func TestExaConfigNeedsLocalAddress(t *testing.T) {
	c := refConfig()
	c.Local6 = netip.Addr{}
	if _, err := exaConfig(c, "/lab/helper.sh"); err == nil {
		t.Error("an IPv6 neighbour without Local6 rendered")
	}
}

// TestConfigsAcceptedByDaemons feeds the rendered configs to each daemon's
// own checker, and a broken copy of each to prove the checker can fail.
func TestConfigsAcceptedByDaemons(t *testing.T) {
	labtest.Require(t) // bgpd -S wants root even for a dry run
	labtest.RequireBinaries(t, "gobgpd", "bird", "/usr/lib/frr/bgpd", "exabgp")
	dir := t.TempDir()
	for f, p := range map[Family]netip.Prefix{IPv4: pfx("203.0.113.1/32"), IPv6: pfx("2001:db8:100::1/128")} {
		if err := os.WriteFile(birdStaticFile(dir, f), []byte(birdStatic([]netip.Prefix{p})), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files := renders(t, refConfig(), dir)
	path := func(name string) string { return filepath.Join(dir, name) }
	checks := []struct {
		file   string
		broken string
		cmd    []string
	}{
		{"gobgpd.toml", "[neighbors\n", []string{"gobgpd", "-d", "-f", path("gobgpd.toml")}},
		{"bird.conf", "protocol nonsense {}\n", []string{"bird", "-p", "-c", path("bird.conf")}},
		{"bgpd.conf", "router bgp 64512\n neighbor nonsense remote-as 1\n", []string{"/usr/lib/frr/bgpd", "-C", "-S", "-f", path("bgpd.conf"), "-i", path("bgpd.pid"), "--vty_socket", dir, "--log", "stdout"}},
		{"exabgp.conf", "neighbor nonsense {\n}\n", []string{"exabgp", "-e", path("exabgp.env"), "--validate", path("exabgp.conf")}},
	}
	// With a passive neighbour the env file makes ExaBGP listen, and even
	// --validate then binds the LAN address, which this namespace lacks.
	if err := os.WriteFile(path("exabgp.env"), []byte(exaEnv(Config{})), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		for _, broken := range []bool{false, true} {
			text := files[c.file]
			if broken {
				text += c.broken
			}
			if err := os.WriteFile(path(c.file), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(c.cmd[0], c.cmd[1:]...).CombinedOutput()
			// bgpd -C exits 0 even on errors; it says so instead.
			failed := err != nil || bytes.Contains(out, []byte("Config Failed"))
			if failed != broken {
				t.Errorf("%s (broken %v): checker failed=%v: %v\n%s\nconfig:\n%s", c.file, broken, failed, err, out, text)
			}
		}
	}
}

func TestSecs(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 1, 500 * time.Millisecond: 1, time.Second: 1, 9 * time.Second: 9, 90*time.Second + 900*time.Millisecond: 90} {
		if got := secs(d); got != want {
			t.Errorf("secs(%v) = %d, want %d", d, got, want)
		}
	}
	if c := (Config{}); c.hold() != 9*time.Second || c.keepalive() != 3*time.Second || c.connectRetry() != time.Second {
		t.Errorf("defaults: hold %v keepalive %v connect retry %v", c.hold(), c.keepalive(), c.connectRetry())
	}
	if !strings.Contains(goBGPConfig(Config{ASN: 1, RouterID: p11, Neighbors: []Neighbor{{Address: p12, ASN: 2}}}), "hold-time = 9") {
		t.Error("default hold time not rendered")
	}
}

// TestFRRBGPBFD: a neighbour with BFDInterval names a bfdd profile of
// that interval; without one, no bfdd runs.
func TestFRRBGPBFD(t *testing.T) {
	c := Config{ASN: 64512, RouterID: netip.MustParseAddr("198.51.100.11"), Neighbors: []Neighbor{
		{Address: netip.MustParseAddr("198.51.100.1"), ASN: 64512, BFDInterval: 50 * time.Millisecond},
		{Address: netip.MustParseAddr("198.51.100.2"), ASN: 64512, BFDInterval: 50 * time.Millisecond},
		{Address: netip.MustParseAddr("198.51.100.3"), ASN: 64512},
	}}
	bgp, bfd := frrBGPConfig(c), frrBGPBFDConfig(c)
	if !strings.Contains(bgp, " neighbor 198.51.100.1 bfd profile lab50\n") || strings.Contains(bgp, "198.51.100.3 bfd") {
		t.Errorf("bgpd.conf:\n%s", bgp)
	}
	if want := "hostname lab\n!\nbfd\n profile lab50\n  transmit-interval 50\n  receive-interval 50\n  detect-multiplier 3\n !\n!\n"; bfd != want {
		t.Errorf("bfdd.conf:\n%s\nwant:\n%s", bfd, want)
	}
	c.Neighbors = c.Neighbors[2:]
	if bfd := frrBGPBFDConfig(c); bfd != "" {
		t.Errorf("bfdd.conf without BFD neighbours:\n%s", bfd)
	}
}
