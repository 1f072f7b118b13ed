package view

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"log/slog"
)

type fakeSource struct {
	lastFamily string
	lastPrefix netip.Prefix
}

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func (f *fakeSource) Neighbors(context.Context) []Neighbor {
	return []Neighbor{
		{Address: netip.MustParseAddr("198.51.100.11"), ASN: 64512, State: "Established", Since: t0, Received: 2, Accepted: 1, Rejected: 1},
		{Address: netip.MustParseAddr("198.51.100.12"), ASN: 64512, State: "Active", Since: t0.Add(-time.Hour), Dynamic: true, LastError: "connection refused"},
	}
}

func (f *fakeSource) RIB(_ context.Context, fam string, p netip.Prefix) []RIBEntry {
	f.lastFamily, f.lastPrefix = fam, p
	lp := uint32(100)
	bw := float32(2)
	return []RIBEntry{{Prefix: netip.MustParsePrefix("203.0.113.10/32"), Paths: []Path{
		{Best: true, Multipath: true, NextHop: netip.MustParseAddr("198.51.100.11"), Origin: "i", LocalPref: &lp, Since: t0, LinkBandwidth: &bw},
		{Multipath: true, NextHop: netip.MustParseAddr("198.51.100.12"), Origin: "i", LocalPref: &lp, Since: t0},
		{NextHop: netip.MustParseAddr("198.51.100.13"), ASPath: "64513", Origin: "i", Since: t0, Reason: "local-pref"},
	}}}
}

func (f *fakeSource) FIB(context.Context) ([]FIBRoute, error) {
	return []FIBRoute{{Prefix: netip.MustParsePrefix("203.0.113.10/32"), NextHops: []FIBNextHop{
		{Addr: netip.MustParseAddr("198.51.100.11"), Weight: 2}, {Addr: netip.MustParseAddr("198.51.100.12"), Weight: 1}}}}, nil
}

// TestAPIOverSocket serves a fake daemon on a unix socket and reads every
// view back through the client, as the CLI does.
func TestAPIOverSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	src := &fakeSource{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, sock, Handler(src), slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
			t.Error("socket left behind")
		}
	})
	c := NewClient(sock)
	var ns []Neighbor
	var err error
	for i := 0; i < 100; i++ { // the server goroutine may not listen yet
		if ns, err = c.Neighbors(ctx); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil || len(ns) != 2 || ns[1].LastError != "connection refused" {
		t.Fatalf("neighbors %+v, %v", ns, err)
	}
	rib, err := c.RIB(ctx, "ipv4", netip.MustParsePrefix("203.0.113.10/32"))
	if err != nil || len(rib) != 1 || len(rib[0].Paths) != 3 || src.lastFamily != "ipv4" || src.lastPrefix.String() != "203.0.113.10/32" {
		t.Fatalf("rib %+v, %v (%q %v)", rib, err, src.lastFamily, src.lastPrefix)
	}
	if _, err := c.RIB(ctx, "ipx", netip.Prefix{}); err == nil || !strings.Contains(err.Error(), "want ipv4 or ipv6") {
		t.Fatalf("bad family: %v", err)
	}
	fib, err := c.FIB(ctx)
	if err != nil || len(fib) != 1 || fib[0].NextHops[0].Weight != 2 {
		t.Fatalf("fib %+v, %v", fib, err)
	}
	// A second daemon must not steal a live socket.
	if err := Serve(ctx, sock, Handler(src), slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Serve: %v", err)
	}
}

func TestClientNoDaemon(t *testing.T) {
	_, err := NewClient(filepath.Join(t.TempDir(), "none.sock")).Neighbors(context.Background())
	if !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("got %v", err)
	}
}

func TestWriteViews(t *testing.T) {
	src := &fakeSource{}
	now := t0.Add(3*time.Minute + 12*time.Second)
	var b bytes.Buffer
	if err := WriteNeighbors(&b, src.Neighbors(nil), now); err != nil {
		t.Fatal(err)
	}
	want := `Peer            AS     Up/Down   State        #Received  Accepted  Rejected
198.51.100.11   64512  00:03:12  Established  2          1         1
198.51.100.12*  64512  01:03:12  Active       0          0         0
198.51.100.12: connection refused
`
	if b.String() != want {
		t.Errorf("neighbors:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := WriteRIB(&b, src.RIB(nil, "", netip.Prefix{}), now); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"*> 203.0.113.10/32  198.51.100.11           00:03:12  [{Origin: i} {LocalPref: 100} {LinkBandwidth: 2}]",
		"*= 203.0.113.10/32  198.51.100.12           00:03:12  [{Origin: i} {LocalPref: 100}]",
		"*  203.0.113.10/32  198.51.100.13  64513    00:03:12  [{Origin: i} {NotBest: local-pref}]",
	} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("rib output lacks %q:\n%s", line, b.String())
		}
	}
	b.Reset()
	fib, _ := src.FIB(nil)
	if err := WriteFIB(&b, fib); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "203.0.113.10/32  198.51.100.11 (weight 2), 198.51.100.12 (weight 1)") {
		t.Errorf("fib:\n%s", b.String())
	}
	if FormatAge(50*time.Hour) != "2d02h" {
		t.Error(FormatAge(50 * time.Hour))
	}
}

// TestWriteNeighborsAdvertised: the Advertised column appears only when a
// neighbor has routes advertised to it, so a router's table is unchanged.
func TestWriteNeighborsAdvertised(t *testing.T) {
	now := t0.Add(time.Minute)
	a := netip.MustParseAddr
	cases := []struct {
		name string
		ns   []Neighbor
		want string
	}{
		{"router", []Neighbor{
			{Address: a("198.51.100.11"), ASN: 64512, State: "Established", Since: t0, Received: 2, Accepted: 2},
		}, `Peer           AS     Up/Down   State        #Received  Accepted  Rejected
198.51.100.11  64512  00:01:00  Established  2          2         0
`},
		{"speaker", []Neighbor{
			{Address: a("198.51.100.1"), ASN: 64512, State: "Established", Since: t0, Rejected: 1, Advertised: 120},
			{Address: a("198.51.100.2"), ASN: 64512, State: "Active", Since: t0},
		}, `Peer          AS     Up/Down   State        #Received  Accepted  Rejected  Advertised
198.51.100.1  64512  00:01:00  Established  0          0         1         120
198.51.100.2  64512  00:01:00  Active       0          0         0         0
`},
		{"router with bfd", []Neighbor{
			{Address: a("198.51.100.11"), ASN: 64512, State: "Established", Since: t0, BFD: &BFD{State: "Up"}},
			{Address: a("198.51.100.12"), ASN: 64512, State: "Active", Since: t0},
		}, `Peer           AS     Up/Down   State        #Received  Accepted  Rejected  BFD
198.51.100.11  64512  00:01:00  Established  0          0         0         Up
198.51.100.12  64512  00:01:00  Active       0          0         0         -
`},
		{"router with graceful restart", []Neighbor{
			{Address: a("198.51.100.11"), ASN: 64512, State: "Established", Since: t0, GracefulRestart: &GracefulRestart{Negotiated: true}},
			{Address: a("198.51.100.12"), ASN: 64512, State: "Active", Since: t0,
				GracefulRestart: &GracefulRestart{State: "restarting", StalePaths: 12, Deadline: now.Add(115 * time.Second)}},
			{Address: a("198.51.100.13"), ASN: 64512, State: "Established", Since: t0},
		}, `Peer           AS     Up/Down   State        #Received  Accepted  Rejected  GR
198.51.100.11  64512  00:01:00  Established  0          0         0         on
198.51.100.12  64512  00:01:00  Active       0          0         0         restarting 12 paths, 00:01:55 left
198.51.100.13  64512  00:01:00  Established  0          0         0         -
`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteNeighbors(&b, tc.ns, now); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", b.String(), tc.want)
			}
		})
	}
}

// infSource answers a RIB that JSON cannot encode: a +Inf link bandwidth.
type infSource struct{ fakeSource }

func (*infSource) RIB(context.Context, string, netip.Prefix) []RIBEntry {
	bw := float32(math.Inf(1))
	return []RIBEntry{{Prefix: netip.MustParsePrefix("203.0.113.10/32"), Paths: []Path{{Best: true, LinkBandwidth: &bw}}}}
}

// TestAnswerThatCannotBeEncoded: the API answers 500 with the reason, never
// a 200 with an empty or truncated body, and the client reports it.
func TestAnswerThatCannotBeEncoded(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler(&infSource{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/rib", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, body %q", rec.Code, rec.Body)
	}
	var body struct{ Error string }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || !strings.Contains(body.Error, "unsupported value: +Inf") {
		t.Fatalf("body %q (%v)", rec.Body, err)
	}

	c := serveTest(t, &infSource{})
	if _, err := c.RIB(context.Background(), "", netip.Prefix{}); err == nil || !strings.Contains(err.Error(), "+Inf") {
		t.Fatalf("client: %v", err)
	}
}

// serveTest serves src on a unit socket for the rest of the test, and
// returns a client once the socket answers.
func serveTest(t *testing.T, src Source) *Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, sock, Handler(src), slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	c := NewClient(sock)
	for range 100 { // the server goroutine may not listen yet
		if _, err := c.Neighbors(ctx); !errors.Is(err, ErrNoDaemon) {
			return c
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the API never listened")
	return nil
}

// checkerSource compares its kernel with its RIB.
type checkerSource struct{ fakeSource }

func (*checkerSource) FIBCheck(context.Context) (FIBCheck, error) {
	return FIBCheck{Checked: t0, Routes: 3, Repairs: 7, Differences: []FIBDifference{
		{Prefix: netip.MustParsePrefix("203.0.113.10/32"), Kind: "different",
			Want: []FIBNextHop{{Addr: netip.MustParseAddr("198.51.100.11")}, {Addr: netip.MustParseAddr("198.51.100.12")}}},
		{Prefix: netip.MustParsePrefix("203.0.113.11/32"), Kind: "extra"},
	}}, nil
}

// TestFIBCheck: a router that compares its kernel with its RIB answers
// /v1/fib/check and the CLI prints it; a daemon that does not says so.
func TestFIBCheck(t *testing.T) {
	c := serveTest(t, &checkerSource{})
	got, err := c.FIBCheck(context.Background())
	if err != nil || got.Repairs != 7 || len(got.Differences) != 2 || len(got.Differences[0].Want) != 2 {
		t.Fatalf("check %+v, %v", got, err)
	}
	var b bytes.Buffer
	if err := WriteFIBCheck(&b, got, t0.Add(12*time.Second)); err != nil {
		t.Fatal(err)
	}
	want := `2 prefixes differ between the kernel and the RIB's 3 routes (checked 00:00:12 ago, 7 repairs since start):
Prefix           Kernel     RIB wants
203.0.113.10/32  different  198.51.100.11, 198.51.100.12
203.0.113.11/32  extra      -
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := WriteFIBCheck(&b, FIBCheck{Checked: t0, Routes: 3}, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if b.String() != "The kernel matches the RIB: 3 routes (checked 00:01:00 ago, 0 repairs since start)\n" {
		t.Errorf("got %q", b.String())
	}

	if _, err := serveTest(t, &fakeSource{}).FIBCheck(context.Background()); err == nil || !strings.Contains(err.Error(), "does not compare") {
		t.Fatalf("a daemon without a check: %v", err)
	}
}
