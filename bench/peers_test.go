package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
	"github.com/bgplb/bgplb/lab"
)

// The many-peers LAN is the benchmarking range itself: the router at
// 198.18.0.1/15, the load generator's namespace with one address per node.
var (
	peersRouter = netip.MustParseAddr("198.18.0.1")
	peersGen    = netip.MustParseAddr("198.18.0.2")
)

const peersRouterConfig = `asn: 64512
routerID: 198.18.0.1
dynamicNeighbors:
  - {prefix: 198.18.0.0/15, peerASN: 64513, maxPeers: MAXPEERS}
import:
  prefixes: ["100.64.0.0/10"]
  maxPrefixes: 1000
metrics: {address: "127.0.0.1:9473"}
api: {socket: SOCKET}
`

// peersBIRDConfig: BIRD accepting the same range as dynamic neighbours and
// installing what it learns.
const peersBIRDConfig = `router id 198.18.0.1;
log stderr { warning, error, fatal };
protocol device { scan time 10; }
protocol kernel { ipv4 { import none; export all; }; merge paths on; }
protocol bgp dyn {
  local 198.18.0.1 as 64512;
  neighbor range 198.18.0.0/15 as 64513;
  dynamic name "dyn";
  direct;
  hold time 90;
  ipv4 { import all; export none; };
}
`

// nodeAddr is the i-th node's address: 198.18.1.0 onwards (up to 130k).
func nodeAddr(i int) netip.Addr {
	j := i + 256
	return netip.AddrFrom4([4]byte{198, 18 + byte(j>>16), byte(j >> 8), byte(j)})
}

// nodeRoutes are the /32s node i announces, from 100.64.0.0/10.
func nodeRoutes(i, k int) []wire.NLRI {
	out := make([]wire.NLRI, k)
	for r := range out {
		j := i*k + r
		out[r] = wire.NLRI{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 64 + byte(j>>16), byte(j >> 8), byte(j)}), 32)}
	}
	return out
}

// peersLab builds the router and generator namespaces and gives the
// generator one /32 per node. The router gets a permanent neighbour entry
// per node: the kernel's ARP table is shared by all namespaces and its
// garbage collector starts refusing entries at gc_thresh3 (1024 by
// default), which thousands of peers would pass; permanent entries are not
// counted, and the host's sysctls stay as they are.
func peersLab(ctx context.Context, peers int) (*lab.Lab, error) {
	l, _, err := lab.NewLAN(ctx, "bp",
		lab.HostSpec{Name: "router", Addrs: []netip.Prefix{netip.PrefixFrom(peersRouter, 15)}},
		lab.HostSpec{Name: "gen", Addrs: []netip.Prefix{netip.PrefixFrom(peersGen, 15)}})
	if err != nil {
		return l, err
	}
	mac, err := linkAddr(ctx, l.Host("gen"), lab.DefaultIfname)
	if err != nil {
		return l, err
	}
	addrs := make([][]string, peers)
	neighs := make([][]string, peers)
	for i := range peers {
		a := nodeAddr(i).String()
		addrs[i] = []string{"addr", "add", a + "/32", "dev", lab.DefaultIfname}
		neighs[i] = []string{"neigh", "replace", a, "lladdr", mac, "dev", lab.DefaultIfname, "nud", "permanent"}
	}
	if err := l.Host("gen").IPBatch(ctx, addrs...); err != nil {
		return l, err
	}
	return l, l.Host("router").IPBatch(ctx, neighs...)
}

// linkAddr is an interface's MAC address.
func linkAddr(ctx context.Context, ns *lab.Netns, ifname string) (string, error) {
	out, err := ns.IPOutput(ctx, "-j", "link", "show", "dev", ifname)
	if err != nil {
		return "", err
	}
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return "", fmt.Errorf("bench: link %s: %v (%s)", ifname, err, out)
	}
	return links[0].Address, nil
}

// dialNodes connects every node to the router at once: workers on threads
// switched into the generator's namespace each dial a share of the nodes,
// and every connection is handed to its own session as soon as it is up.
func dialNodes(ctx context.Context, gen *lab.Netns, peers, routes int, all *injectors) error {
	const workers = 128
	jobs := make(chan int)
	errs := make(chan error, peers+workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			err := gen.Do(func() error {
				for i := range jobs {
					a := nodeAddr(i)
					d := net.Dialer{Timeout: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: a.AsSlice()}}
					c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(peersRouter, 179).String())
					if err != nil {
						errs <- fmt.Errorf("node %v: %w", a, err)
						continue
					}
					wg.Go(func() { errs <- runNode(ctx, c.(*net.TCPConn), a, nodeRoutes(i, routes), all) })
				}
				return nil
			})
			if err != nil {
				errs <- err
			}
		})
	}
	for i := range peers {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	var all2 []error
	for err := range errs {
		if err != nil {
			all2 = append(all2, err)
		}
	}
	if len(all2) > 0 {
		return fmt.Errorf("bench: %d of %d nodes failed, first: %w", len(all2), peers, all2[0])
	}
	return nil
}

// runNode brings one node's session up and announces its routes.
func runNode(ctx context.Context, c *net.TCPConn, a netip.Addr, nlri []wire.NLRI, all *injectors) error {
	inj, err := startInjector(ctx, c, injectorConfig{Local: a, Remote: peersRouter, LocalAS: cmpNodeAS, PeerAS: cmpRouterAS})
	if err != nil {
		return err
	}
	all.add(inj)
	msgs, err := inj.encodeReach(nlri)
	if err != nil {
		return err
	}
	return inj.send(ctx, msgs)
}

// peersResult is one many-peers run.
type peersResult struct {
	Up       time.Duration // first connection until every route is in the kernel
	PerPeer  float64       // bytes of RSS per idle peer
	HeapPeer float64       // bytes of Go heap per idle peer (bgplb only)
	// goroutines and goroutine stack bytes per idle peer (bgplb only):
	// stacks are most of what an idle peer costs beyond its heap.
	GoroutinesPeer, StackPeer float64
}

// peersOnce starts daemon (bgplb or bird) with a dynamic range, connects
// peers nodes at once, and measures.
func peersOnce(ctx context.Context, b *testing.B, daemon string, peers, routes int) (res peersResult, err error) {
	l, err := peersLab(ctx, peers)
	if l != nil {
		defer l.Close()
	}
	if err != nil {
		return res, err
	}
	rns := l.Host("router")
	var (
		pid    int
		alive  func() error
		router *routerProc
	)
	switch daemon {
	case "bgplb":
		cfg := peersRouterConfig
		cfg = strings.ReplaceAll(cfg, "MAXPEERS", strconv.Itoa(peers))
		router, err = startRouter(ctx, bgplb(b), rns, rns.Dir, cfg, "warn")
		if err != nil {
			return res, err
		}
		defer router.kill()
		// The metrics server answers once the router is up.
		if err := router.waitMetric(ctx, func(map[string]float64) bool { return true }); err != nil {
			return res, err
		}
		pid, alive = router.proc.PID(), func() error {
			if exited, err := router.proc.Exited(); exited {
				return fmt.Errorf("%w: %v; log:\n%s", errStopped, err, tail(router.proc.Logs(), 40))
			}
			return nil
		}
	case "bird":
		proc, err := startPeersBIRD(ctx, rns)
		if err != nil {
			return res, err
		}
		defer proc.Stop()
		pid, alive = proc.PID(), func() error {
			if exited, err := proc.Exited(); exited {
				return fmt.Errorf("%w: %v; log:\n%s", errStopped, err, tail(proc.Logs(), 40))
			}
			return nil
		}
	default:
		return res, fmt.Errorf("bench: no many-peers setup for %s", daemon)
	}
	d := &running{pids: []int{pid}, count: kernelCount(pid), alive: alive}
	if err := lab.Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		if err := alive(); err != nil {
			return false, lab.Permanent(err)
		}
		return Listening(pid, 179)
	}); err != nil {
		return res, fmt.Errorf("bench: %s never listened: %w", daemon, err)
	}
	base, err := d.count(ctx)
	if err != nil {
		return res, err
	}
	var idle0 idleMem
	if router != nil {
		if idle0, err = routerIdle(router); err != nil {
			return res, err
		}
	}
	u0, err := ReadUsage(pid)
	if err != nil {
		return res, err
	}
	var nodes injectors
	defer nodes.dropAll()
	start := time.Now()
	dialErr := make(chan error, 1)
	wctx, failed := context.WithCancel(ctx)
	defer failed()
	go func() {
		err := dialNodes(ctx, l.Host("gen"), peers, routes, &nodes)
		if err != nil {
			failed() // no use waiting for routes that will not come
		}
		dialErr <- err
	}()
	waitErr := waitCount(wctx, d, base+peers*routes, nil)
	res.Up = time.Since(start)
	if err := errors.Join(<-dialErr, waitErr); err != nil {
		return res, err
	}
	if router != nil {
		idle1, err := routerIdle(router)
		if err != nil {
			return res, err
		}
		res.HeapPeer = (idle1.heap - idle0.heap) / float64(peers)
		res.StackPeer = (idle1.stack - idle0.stack) / float64(peers)
		res.GoroutinesPeer = (idle1.goroutines - idle0.goroutines) / float64(peers)
		if dir := os.Getenv("BGPLB_PEERS_PROFILE"); dir != "" {
			if err := router.saveProfiles(dir); err != nil {
				return res, err
			}
		}
	}
	u1, err := ReadUsage(pid)
	if err != nil {
		return res, err
	}
	res.PerPeer = float64(u1.RSS-u0.RSS) / float64(peers)
	return res, nil
}

// idleMem is what an idle router holds right after a collection.
type idleMem struct{ heap, stack, goroutines float64 }

func routerIdle(r *routerProc) (idleMem, error) {
	if err := r.gc(); err != nil {
		return idleMem{}, err
	}
	m, err := r.scrape()
	if err != nil {
		return idleMem{}, err
	}
	return idleMem{m["go_memstats_heap_inuse_bytes"], m["go_memstats_stack_inuse_bytes"], m["go_goroutines"]}, nil
}

func startPeersBIRD(ctx context.Context, ns *lab.Netns) (*lab.Proc, error) {
	bin, err := lookDaemon("bird")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(ns.Dir, "bird-")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(conf, []byte(peersBIRDConfig), 0o644); err != nil {
		return nil, err
	}
	return ns.StartWith(ctx, lab.StartOptions{Label: "bird", Dir: dir}, bin,
		"-f", "-c", conf, "-s", filepath.Join(dir, "bird.ctl"), "-P", filepath.Join(dir, "bird.pid"))
}

// envInt reads a positive integer from the environment, else def.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkManyPeers connects BGPLB_PEERS nodes (default 5,000) at once to
// the router's dynamic-neighbour range, each announcing BGPLB_PEER_ROUTES
// /32s (default 4), and reports the time until every route is in the
// kernel and the idle memory per peer (RSS growth over the peers, and for
// bgplb the Go heap after a collection). BIRD runs the same with
// BGPLB_PEERS_BIRD nodes (default 500: it takes minutes for 1,000).
// BGPLB_PEERS_PROFILE names a directory for bgplb's heap profile and
// goroutine dump once idle.
func BenchmarkManyPeers(b *testing.B) {
	routes := envInt("BGPLB_PEER_ROUTES", 4)
	for _, c := range []struct {
		daemon string
		peers  int
	}{{"bgplb", envInt("BGPLB_PEERS", 5000)}, {"bird", envInt("BGPLB_PEERS_BIRD", 500)}} {
		b.Run(fmt.Sprintf("%s-%d", c.daemon, c.peers), func(b *testing.B) {
			requireLab(b, "bird")
			for range b.N {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(envInt("BGPLB_BENCH_TIMEOUT_S", 900))*time.Second)
				res, err := peersOnce(ctx, b, c.daemon, c.peers, routes)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(res.Up.Seconds(), "up-s")
				b.ReportMetric(res.PerPeer/1024, "RSS-KB/peer")
				if c.daemon == "bgplb" {
					b.ReportMetric(res.HeapPeer/1024, "heap-KB/peer")
					b.ReportMetric(res.StackPeer/1024, "stack-KB/peer")
					b.ReportMetric(res.GoroutinesPeer, "goroutines/peer")
				}
				fmt.Printf("%s: %d peers x %d routes in the kernel in %.2f s; idle RSS %.1f KB/peer; load %s\n",
					c.daemon, c.peers, routes, res.Up.Seconds(), res.PerPeer/1024, loadAvg())
			}
		})
	}
}
