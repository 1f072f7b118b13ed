package l2

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
)

// capture opens a packet socket for all frames on dev in ns, closed when
// the test ends. The kernel stamps each frame's arrival (readStamped).
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
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
			unix.Close(fd)
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

// readStamped reads one frame from a capture socket with the time the
// kernel received it, so gaps measured are the wire's, not this test's
// goroutine scheduling.
func readStamped(f *os.File, buf []byte) (int, time.Time, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, time.Time{}, err
	}
	oob := make([]byte, 128)
	var n, oobn int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
		return rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return 0, time.Time{}, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return 0, time.Time{}, err
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
			sec, nsec := binary.NativeEndian.Uint64(m.Data), binary.NativeEndian.Uint64(m.Data[8:])
			return n, time.Unix(int64(sec), int64(nsec)), nil
		}
	}
	return 0, time.Time{}, errors.New("capture: frame without a timestamp")
}

// announcements reads f until deadline, or until it has seen wantARP
// gratuitous ARP and wantNA unsolicited NA for the VIPs from mac, and
// returns when each arrived.
func announcements(t *testing.T, f *os.File, mac MAC, deadline time.Time, wantARP, wantNA int) (garp, una []time.Time) {
	t.Helper()
	must(t, f.SetReadDeadline(deadline))
	buf := make([]byte, 2000)
	for len(garp) < wantARP || len(una) < wantNA {
		n, at, err := readStamped(f, buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return garp, una
		}
		must(t, err)
		if p, err := ParseARP(buf[:n]); err == nil && p == gratuitousARP(testVIP4, mac) {
			garp = append(garp, at)
		}
		if p, err := ParseNDP(buf[:n]); err == nil && p == unsolicitedNA(testVIP6, mac) {
			una = append(una, at)
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
	arp := Schedule{Repeats: 3, Interval: 100 * time.Millisecond}
	// More advertisements, closer together, than RFC 4861 allows: cut
	// down to three, a second or more apart.
	na := Schedule{Repeats: 5, Interval: 100 * time.Millisecond}
	offs, naOffs := arp.Offsets(), na.forNDP().Offsets()
	if len(naOffs) != maxUnsolicitedNA {
		t.Fatalf("NA offsets %v", naOffs)
	}
	f := capture(t, l.client, "eth0")
	a := announcerWith(t, l.node1, Options{Log: testLogger(t), Gratuitous: arp, Unsolicited: na})
	start := time.Now()
	must(t, a.Set([]Answer{{testVIP4, "eth0"}, {testVIP6, "eth0"}}))
	// The bound for all to arrive is generous.
	last, gap := naOffs[len(naOffs)-1], naOffs[len(naOffs)-1]-naOffs[len(naOffs)-2]
	garp, una := announcements(t, f, l.mac1, start.Add(last+10*time.Second), len(offs), len(naOffs))
	if len(garp) != len(offs) || len(una) != len(naOffs) {
		t.Fatalf("saw %d gratuitous ARP and %d unsolicited NA, want %d and %d", len(garp), len(una), len(offs), len(naOffs))
	}
	// A fourth NA, had the schedule one, would come a doubled gap after the
	// third: watch a second longer than that.
	if _, more := announcements(t, f, l.mac1, una[len(una)-1].Add(2*gap+time.Second), 0, 1); len(more) != 0 {
		t.Errorf("%d unsolicited NA more than RFC 4861 allows", len(more))
	}
	checkSpacing(t, "gratuitous ARP", garp, offs)
	// The node waits a full RetransTimer from one send to the next; the
	// kernel stamps arrivals a few microseconds after, the margin is for
	// softirqs deferred on a loaded machine.
	for i := 1; i < len(una); i++ {
		if d := una[i].Sub(una[i-1]); d < retransTimer-100*time.Millisecond {
			t.Errorf("unsolicited NA %d came %v after the one before, want >= %v", i, d, retransTimer)
		}
	}
	for _, st := range a.Status() {
		want := uint64(len(offs))
		if st.Addr.Is6() {
			want = uint64(len(naOffs))
		}
		if st.Gratuitous != want {
			t.Errorf("status %+v: want %d gratuitous", st, want)
		}
	}
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

// within runs fn and fails the test if it has not returned after d.
func within(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s blocked for %v", what, d)
	}
}

// TestStuckSendNeverBlocksSet: the node's transmit queue holds every
// frame (a token bucket of 8 bit/s, as a hung NIC would), so answers fill
// the socket's send buffer. They are dropped and counted, and Status, Set
// and Close still return at once.
func TestStuckSendNeverBlocksSet(t *testing.T) {
	t.Parallel()
	l := newTestLAN(t)
	labtest.RequireBinaries(t, "tc")
	a := announcer(t, l.node1, Schedule{Repeats: -1})
	must(t, a.Set([]Answer{{testVIP4, "eth0"}}))
	_, err := l.node1.Run(l.ctx, "tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "8bit", "burst", "1600", "limit", "100000000")
	must(t, err)
	// Runs before the Announcer's Close: releasing the queue lets a writer
	// stuck without the fix go, so the test fails instead of hanging.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = l.node1.Run(ctx, "tc", "qdisc", "del", "dev", "eth0", "root")
	})
	f := capture(t, l.client, "eth0")
	cmac := MAC{2, 0, 0, 0, 9, 1}
	req := AppendARP(nil, ARP{EthDst: broadcastMAC, EthSrc: cmac, Op: ARPRequest, SenderMAC: cmac, SenderIP: cli4, TargetIP: testVIP4})
	var st []AnswerStatus
	err = lab.Poll(l.ctx, 10*time.Millisecond, func() (bool, error) {
		// The send buffer takes a few hundred replies.
		for range 500 {
			if _, err := f.Write(req); err != nil {
				return false, err
			}
		}
		within(t, 10*time.Second, "Status", func() { st = a.Status() })
		return len(st) == 1 && st[0].Dropped > 0 && st[0].LastError != nil, nil
	})
	if err != nil {
		t.Fatalf("no drops: %+v: %v", st, err)
	}
	t.Logf("answered %d, dropped %d: %v", st[0].Answered, st[0].Dropped, st[0].LastError)
	within(t, 10*time.Second, "Set", func() { err = a.Set(nil) })
	must(t, err)
	within(t, 10*time.Second, "Close", func() { err = a.Close() })
	must(t, err)
}

// TestMACChangeIsAnnounced: the interface's MAC changes under the
// Announcer, as a bond's does on failover with fail_over_mac. Clients
// learn the new MAC without asking, and answers carry it.
func TestMACChangeIsAnnounced(t *testing.T) {
	t.Parallel()
	l := newTestLAN(t)
	a := answerBoth(t, l, announcer(t, l.node1, Schedule{}), l.mac1)
	moved := MAC{2, 0, 0, 0, 1, 9}
	must(t, l.node1.IP(l.ctx, "link", "set", "dev", "eth0", "address", net.HardwareAddr(moved[:]).String()))
	for _, vip := range []netip.Addr{testVIP4, testVIP6} {
		waitNeigh(t, l.ctx, l.client, vip, false, "client follows the new MAC", hasMAC(moved))
	}
	waitStatus(t, l, a, "status names the new MAC", func(st AnswerStatus) bool {
		return st.LastError == nil && st.MAC.String() == net.HardwareAddr(moved[:]).String()
	})
	for _, vip := range []netip.Addr{testVIP4, testVIP6} {
		must(t, l.client.IP(l.ctx, "neigh", "flush", "to", vip.String(), "dev", "eth0"))
		waitNeigh(t, l.ctx, l.client, vip, true, "answered with the new MAC", hasMAC(moved))
	}
}
