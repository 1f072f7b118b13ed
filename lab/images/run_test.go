package images

import (
	"bytes"
	"context"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bgplb/bgplb/internal/image/enginetest"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/dnsserver"
	"github.com/bgplb/bgplb/lab/labtest"
)

// The images as a node runs them: imported with `ctr images import` into a
// private containerd that lives in a network namespace of the test's own,
// then run by ctr from their own entrypoints. The pause container lives
// until SIGTERM and then exits 0; the Pi-hole, on the namespace's network
// (--net-host: the containerd's namespace), answers the lab's DNS client
// over UDP and TCP as the lab's responder does, and exits 0 on SIGTERM.
func TestImagesRunInContainerd(t *testing.T) {
	ctx := labtest.Context(t, 90*time.Second)
	ns := labtest.Netns(t, "img")
	c := enginetest.StartContainerd(t, ns.Path())
	set, err := Ensure(ctx, Options{CacheDir: t.TempDir(), Version: "v0.0.0-imagetest", Images: []string{Pause, Pihole}})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{Pause, Pihole} {
		img := set[name]
		out, took, err := enginetest.RunCmd(c.Ctr(ctx, "images", "import", "--snapshotter", "native", img.Archive))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "unpacking "+img.Ref+" ") {
			t.Fatalf("ctr import of %s printed %q, want it to unpack %s", img.Archive, out, img.Ref)
		}
		t.Logf("imported %s in %v", img.Ref, took.Round(time.Millisecond))
	}

	t.Run("pause", func(t *testing.T) {
		id := enginetest.UniqueName("pause")
		run := startTask(ctx, t, c, id, "run", "--rm", "--snapshotter", "native", "--fifo-dir", c.FifoDir(), set[Pause].Ref, id)
		waitRunning(ctx, t, c, id, run)
		stopTask(ctx, t, c, id, run)
	})

	t.Run("pihole", func(t *testing.T) {
		id := enginetest.UniqueName("pihole")
		answer := netip.MustParseAddr("203.0.113.53")
		run := startTask(ctx, t, c, id, "run", "--rm", "--snapshotter", "native", "--fifo-dir", c.FifoDir(),
			"--net-host", "--env", "NODE_NAME=node-under-test", set[Pihole].Ref, id,
			"/pihole", "--answer", answer.String())
		waitRunning(ctx, t, c, id, run)
		server := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), dnsserver.Port)
		var got dnsserver.Answer
		var last error
		start := time.Now()
		err := lab.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
			qctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			got, last = dnsserver.Query(qctx, ns.Do, server, "pihole.lab", false)
			return last == nil, nil
		})
		if err != nil {
			t.Fatalf("no answer from the pihole container: %v (last: %v)\n%s", err, last, run.output())
		}
		t.Logf("the pihole container answered over UDP %v after it ran: %s", time.Since(start).Round(time.Millisecond), got)
		want := dnsserver.Answer{Name: "pihole.lab.", Addrs: []netip.Addr{answer}, Node: "node-under-test"}
		for _, tcp := range []bool{false, true} {
			got, err := dnsserver.Query(ctx, ns.Do, server, "pihole.lab", tcp)
			if err != nil || got.Name != want.Name || got.Node != want.Node || !slices.Equal(got.Addrs, want.Addrs) {
				t.Errorf("tcp=%v: %+v, %v; want %+v", tcp, got, err, want)
			}
		}
		// The exec probe a readiness probe would run, inside the container.
		out, _, err := enginetest.RunCmd(c.Ctr(ctx, "task", "exec", "--exec-id", "probe", "--fifo-dir", c.FifoDir(),
			id, "/pihole", "probe", "--tcp"))
		if err != nil || strings.TrimSpace(out) != "203.0.113.53 from node-under-test" {
			t.Errorf("pihole probe in the container: %q, %v", out, err)
		}
		stopTask(ctx, t, c, id, run)
		if out := run.output(); !strings.Contains(out, `"msg":"stopped"`) {
			t.Errorf("the pihole's log lacks its stop line:\n%s", out)
		}
	})
}

// task is a foreground `ctr run`: it exits with the container's process.
type task struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	mu   sync.Mutex
	out  bytes.Buffer
}

func (k *task) Write(p []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.out.Write(p)
}

func (k *task) output() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.out.String()
}

func startTask(ctx context.Context, t *testing.T, c *enginetest.Containerd, id string, args ...string) *task {
	t.Helper()
	k := &task{cmd: c.Ctr(ctx, args...), done: make(chan struct{})}
	k.cmd.Stdout, k.cmd.Stderr = k, k
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		k.err = k.cmd.Wait()
		close(k.done)
	}()
	t.Cleanup(func() {
		select {
		case <-k.done:
			return
		default:
		}
		kctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _, _ = enginetest.RunCmd(c.Ctr(kctx, "task", "kill", "-s", "SIGKILL", id))
		<-k.done
	})
	return k
}

// waitRunning waits until ctr lists the task as running.
func waitRunning(ctx context.Context, t *testing.T, c *enginetest.Containerd, id string, k *task) {
	t.Helper()
	start := time.Now()
	err := lab.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		select {
		case <-k.done:
			return false, k.err
		default:
		}
		out, _, err := enginetest.RunCmd(c.Ctr(ctx, "task", "ls"))
		if err != nil {
			return false, err
		}
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == id && f[2] == "RUNNING" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("%s not running: %v\n%s", id, err, k.output())
	}
	t.Logf("%s running %v after ctr run", id, time.Since(start).Round(time.Millisecond))
}

// stopTask sends SIGTERM and wants the process to exit 0 (ctr run exits
// with the container's status).
func stopTask(ctx context.Context, t *testing.T, c *enginetest.Containerd, id string, k *task) {
	t.Helper()
	start := time.Now()
	if _, _, err := enginetest.RunCmd(c.Ctr(ctx, "task", "kill", "-s", "SIGTERM", id)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-k.done:
	case <-ctx.Done():
		t.Fatalf("%s still running after SIGTERM\n%s", id, k.output())
	}
	if k.err != nil {
		t.Fatalf("%s after SIGTERM: %v\n%s", id, k.err, k.output())
	}
	t.Logf("%s exited 0 %v after SIGTERM", id, time.Since(start).Round(time.Millisecond))
}
