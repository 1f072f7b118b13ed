package l2

import (
	"errors"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bgplb/bgplb/lab"
)

// capture opens a packet socket for all frames on dev in ns, closed when
// the test ends.
func capture(t testing.TB, ns *lab.Netns, dev string) *os.File {
	t.Helper()
	var f *os.File
	must(t, ns.Do(func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		f = os.NewFile(uintptr(fd), "capture")
		return nil
	}))
	t.Cleanup(func() { f.Close() })
	return f
}

// announcements reads f until deadline, or until it has seen wantARP
// gratuitous ARP and wantNA unsolicited NA for the VIPs from mac, and
// returns when each arrived.
func announcements(t *testing.T, f *os.File, mac MAC, deadline time.Time, wantARP, wantNA int) (garp, una []time.Time) {
	t.Helper()
	must(t, f.SetReadDeadline(deadline))
	buf := make([]byte, 2000)
	for len(garp) < wantARP || len(una) < wantNA {
		n, err := f.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return garp, una
		}
		must(t, err)
		if p, err := ParseARP(buf[:n]); err == nil && p == gratuitousARP(testVIP4, mac) {
			garp = append(garp, time.Now())
		}
		if p, err := ParseNDP(buf[:n]); err == nil && p == unsolicitedNA(testVIP6, mac) {
			una = append(una, time.Now())
		}
	}
	return garp, una
}

// checkSpacing fails if the announcements were not spread out: the last
// must come at least half the schedule's span after the first. Timers
// never fire early, so this lower bound holds on a loaded machine too.
func checkSpacing(t *testing.T, what string, at []time.Time, offs []time.Duration) {
	t.Helper()
	span := offs[len(offs)-1]
	if got := at[len(at)-1].Sub(at[0]); got < span/2 {
		t.Errorf("%s: the last came %v after the first, schedule spans %v", what, got, span)
	}
}

func TestGratuitousScheduleOnTheWire(t *testing.T) {
	t.Parallel()
	l := newTestLAN(t)
	sched := Schedule{Repeats: 3, Interval: 100 * time.Millisecond}
	offs := sched.Offsets()
	f := capture(t, l.client, "eth0")
	a := announcer(t, l.node1, sched)
	start := time.Now()
	must(t, a.Set([]Answer{{testVIP4, "eth0"}, {testVIP6, "eth0"}}))
	// The schedule spans offs[last] (700 ms); the bound is generous.
	garp, una := announcements(t, f, l.mac1, start.Add(offs[len(offs)-1]+10*time.Second), len(offs), len(offs))
	if len(garp) != len(offs) || len(una) != len(offs) {
		t.Fatalf("saw %d gratuitous ARP and %d unsolicited NA, want %d each", len(garp), len(una), len(offs))
	}
	checkSpacing(t, "gratuitous ARP", garp, offs)
	checkSpacing(t, "unsolicited NA", una, offs)
	for _, st := range a.Status() {
		if st.Gratuitous != uint64(len(offs)) {
			t.Errorf("status %+v: want %d gratuitous", st, len(offs))
		}
	}
	// Announce re-sends the whole schedule for one address.
	a.Announce(testVIP4)
	garp, _ = announcements(t, f, l.mac1, time.Now().Add(offs[len(offs)-1]+10*time.Second), len(offs), 0)
	if len(garp) != len(offs) {
		t.Fatalf("Announce: saw %d gratuitous ARP, want %d", len(garp), len(offs))
	}
	checkSpacing(t, "re-announced ARP", garp, offs)
}

func TestMissingInterfaceIsRetried(t *testing.T) {
	t.Parallel()
	l := newTestLAN(t)
	a := announcer(t, l.node1, Schedule{Repeats: -1})
	want := []Answer{{testVIP4, "eth0"}, {testVIP4, "late0"}}
	err := a.Set(want)
	if err == nil || !strings.Contains(err.Error(), "late0") {
		t.Fatalf("Set with a missing interface: %v", err)
	}
	st := a.Status()
	if len(st) != 2 || st[0].Interface != "eth0" || st[0].LastError != nil || st[1].LastError == nil {
		t.Fatalf("status %+v", st)
	}
	// The other pair works meanwhile.
	waitNeigh(t, l.ctx, l.client, testVIP4, true, "eth0 answers", hasMAC(l.mac1))
	must(t, l.node1.IP(l.ctx, "link", "add", "late0", "type", "veth", "peer", "name", "late1"))
	must(t, l.node1.SetUp(l.ctx, "late0"))
	if err := a.Set(want); err != nil {
		t.Fatalf("Set retry: %v", err)
	}
	for _, st := range a.Status() {
		if st.LastError != nil || len(st.MAC) != 6 {
			t.Errorf("status after retry %+v", st)
		}
	}
}

func TestReadErrorIsReportedAndHealed(t *testing.T) {
	t.Parallel()
	l := newTestLAN(t)
	a := announcer(t, l.node1, Schedule{Repeats: -1})
	must(t, l.node1.IP(l.ctx, "link", "add", "gone0", "type", "veth", "peer", "name", "gone1"))
	must(t, l.node1.SetUp(l.ctx, "gone0"))
	must(t, a.Set([]Answer{{testVIP4, "gone0"}, {testVIP6, "gone0"}}))
	// The first announcement goes out before the link does, so that the
	// second can only come from the reopen.
	waitStatus(t, l, a, "announced", func(st AnswerStatus) bool { return st.LastError == nil && st.Gratuitous == 1 })
	must(t, l.node1.IP(l.ctx, "link", "del", "gone0"))
	waitStatus(t, l, a, "errors reported", func(st AnswerStatus) bool { return st.LastError != nil })
	// Created up in one request: a reopen that found it down would fail to
	// announce, and rightly report that.
	must(t, l.node1.IP(l.ctx, "link", "add", "gone0", "up", "type", "veth", "peer", "name", "gone1"))
	waitStatus(t, l, a, "healed and announced again", func(st AnswerStatus) bool { return st.LastError == nil && st.Gratuitous == 2 })
	waitMaddrOn(t, l, "gone0", solicitedNode(testVIP6).String())
	// A link taken down and up again heals the same way.
	must(t, l.node1.SetDown(l.ctx, "gone0"))
	waitStatus(t, l, a, "errors reported when down", func(st AnswerStatus) bool { return st.LastError != nil })
	must(t, l.node1.SetUp(l.ctx, "gone0"))
	waitStatus(t, l, a, "healed when up", func(st AnswerStatus) bool { return st.LastError == nil && st.Gratuitous >= 3 })
}

func waitStatus(t *testing.T, l *testLAN, a *Announcer, what string, cond func(AnswerStatus) bool) {
	t.Helper()
	var last []AnswerStatus
	err := lab.Poll(l.ctx, 20*time.Millisecond, func() (bool, error) {
		last = a.Status()
		for _, st := range last {
			if !cond(st) {
				return false, nil
			}
		}
		return len(last) > 0, nil
	})
	if err != nil {
		t.Fatalf("%s: %+v: %v", what, last, err)
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	l := newTestLAN(t) // not parallel: it counts the process's goroutines
	before := runtime.NumGoroutine()
	var a *Announcer
	must(t, l.node1.Do(func() error { a = New(Options{}); return nil }))
	must(t, a.Set([]Answer{{testVIP4, "eth0"}, {testVIP6, "eth0"}, {testVIP4, "eth1"}, {testVIP6, "eth1"}}))
	a.Announce(testVIP4)
	must(t, a.Close())
	must(t, a.Close()) // idempotent
	if err := a.Set(nil); err == nil {
		t.Error("Set after Close succeeded")
	}
	err := lab.Poll(l.ctx, 10*time.Millisecond, func() (bool, error) {
		return runtime.NumGoroutine() <= before, nil
	})
	if err != nil {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines %d, were %d:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
	}
}
