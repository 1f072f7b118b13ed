package l2

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/bgplb/bgplb/lab/labtest"
)

const netRawHelperEnv = "BGPLB_L2_NETRAW_HELPER"

// TestMain runs the test binary as the helper of TestOnlyCapNetRaw when
// asked to, instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv(netRawHelperEnv) != "" {
		os.Exit(netRawHelper())
	}
	os.Exit(m.Run())
}

// netRawHelper answers for the test VIPs on eth0 of the namespace it runs
// in until its stdin closes, then says whether it answered any.
func netRawHelper() int {
	caps, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(caps), "\n") {
		if strings.HasPrefix(line, "CapEff:") {
			fmt.Println(strings.Join(strings.Fields(line), " "))
		}
	}
	a := New(Options{Gratuitous: Schedule{Repeats: -1}})
	defer a.Close()
	if err := a.Set([]Answer{{testVIP4, "eth0"}, {testVIP6, "eth0"}}); err != nil {
		fmt.Println("set:", err)
		return 1
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	for _, st := range a.Status() {
		if st.Answered == 0 || st.LastError != nil {
			fmt.Printf("status %+v\n", st)
			return 1
		}
	}
	return 0
}

// TestOnlyCapNetRaw runs the Announcer in a process whose only capability
// is CAP_NET_RAW and checks that it answers ARP and NDP.
func TestOnlyCapNetRaw(t *testing.T) {
	t.Parallel()
	l := newTestLAN(t)
	labtest.RequireBinaries(t, "setpriv")
	cmd := exec.CommandContext(l.ctx, "ip", "netns", "exec", l.node1.Name,
		"setpriv", "--bounding-set=-all,+net_raw", "--inh-caps=-all,+net_raw", "--",
		os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), netRawHelperEnv+"=1")
	stdin, err := cmd.StdinPipe()
	must(t, err)
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	cmd.Stderr = cmd.Stdout
	must(t, cmd.Start())
	// Ends the helper if the test fails early; after a clean exit both
	// calls only return errors nobody needs.
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	var out []string
	for lines.Scan() && lines.Text() != "ready" {
		out = append(out, lines.Text())
	}
	// CAP_NET_RAW is bit 13.
	if len(out) == 0 || out[0] != "CapEff: 0000000000002000" {
		t.Fatalf("helper did not get ready with CAP_NET_RAW alone: %q", out)
	}
	for _, vip := range []netip.Addr{testVIP4, testVIP6} {
		waitNeigh(t, l.ctx, l.client, vip, true, "answered without privileges", hasMAC(l.mac1))
	}
	stdin.Close()
	for lines.Scan() {
		out = append(out, lines.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v: %q", err, out)
	}
}
