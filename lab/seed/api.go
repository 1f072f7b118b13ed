package seed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/client-go/rest"

	"github.com/bgplb/bgplb/internal/controlplane"
	"github.com/bgplb/bgplb/lab"
)

// apiBits is the size of an API link: the root end and the two nodes.
const apiBits = 29

// rootPort is the API switch's port to the root namespace.
const rootPort = "root"

// rootIfname is the root namespace's end of the API link.
func rootIfname(id string) string { return id + "-api" }

// apiLockPath serializes the choice of API links between processes.
func apiLockPath() string { return filepath.Join(os.TempDir(), "bgplb-seed-api.lock") }

// APIPrefix is the API link's /29 (invalid for a half-built lab found by
// Open).
func (s *Seed) APIPrefix() netip.Prefix { return s.api }

// APIServerAddr is the address to bind kube-apiserver to: the root
// namespace's end of the API link, reachable from node1, node2 and the
// root namespace.
func (s *Seed) APIServerAddr() netip.Addr {
	if !s.api.IsValid() {
		return netip.Addr{}
	}
	return s.api.Addr().Next()
}

// NodeAPIAddr is a node's address on the API link, the source of its
// connections to the API server; invalid for hosts that are not nodes.
func (s *Seed) NodeAPIAddr(name string) netip.Addr {
	if !s.api.IsValid() {
		return netip.Addr{}
	}
	a := s.APIServerAddr()
	switch name {
	case Node1:
		return a.Next()
	case Node2:
		return a.Next().Next()
	}
	return netip.Addr{}
}

// buildAPILink makes the API bridge, its port to the root namespace and
// the nodes' interfaces on it.
func (s *Seed) buildAPILink(ctx context.Context) error {
	lan, err := s.Lab.AddLAN(ctx, APILAN)
	if err != nil {
		return err
	}
	p, err := allocAPILink(ctx, func(p netip.Prefix) error { return s.addRootIf(ctx, lan.Switch, p) })
	if err != nil {
		return err
	}
	s.api = p
	if err := lan.Switch.IPBatch(ctx,
		[]string{"link", "set", "dev", rootPort, "master", lab.BridgeName},
		[]string{"link", "set", "dev", rootPort, "up"}); err != nil {
		return err
	}
	for _, n := range s.Nodes() {
		h := lab.HostSpec{Name: n, Ifname: APIIfname, Addrs: []netip.Prefix{netip.PrefixFrom(s.NodeAPIAddr(n), apiBits)}}
		if err := s.Lab.Connect(ctx, APILAN, h); err != nil {
			return err
		}
	}
	return nil
}

// addRootIf creates the root namespace's veth into the API switch with
// the link's first address; IPv6 stays off on it, so it sends nothing
// (router solicitations, MLD reports) nobody asked for.
func (s *Seed) addRootIf(ctx context.Context, sw *lab.Netns, p netip.Prefix) error {
	if err := rootIP(ctx, "link", "add", "name", s.rootIf, "type", "veth", "peer", "name", rootPort, "netns", sw.Name); err != nil {
		return err
	}
	// The thread writing is in the caller's namespace, like the veth.
	err := os.WriteFile("/proc/sys/net/ipv6/conf/"+s.rootIf+"/disable_ipv6", []byte("1"), 0o644)
	if err != nil && !errors.Is(err, os.ErrNotExist) { // no IPv6 at all is fine
		return fmt.Errorf("seed: disable IPv6 on %s: %w", s.rootIf, err)
	}
	if err := rootIP(ctx, "addr", "add", netip.PrefixFrom(p.Addr().Next(), apiBits).String(), "dev", s.rootIf); err != nil {
		return err
	}
	return rootIP(ctx, "link", "set", "dev", s.rootIf, "up")
}

// deleteRootIf deletes the root namespace's veth (and so its peer), if
// it is there.
func (s *Seed) deleteRootIf() error {
	if _, err := net.InterfaceByName(s.rootIf); err != nil {
		return nil // never made, or gone with its namespace
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := rootIP(ctx, "link", "del", "dev", s.rootIf)
	if ce := (*lab.CmdError)(nil); errors.As(err, &ce) && strings.Contains(string(ce.Output), "Cannot find device") {
		return nil // deleted meanwhile
	}
	return err
}

func rootIP(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return &lab.CmdError{Args: append([]string{"ip"}, args...), Output: out, Err: err}
	}
	return nil
}

// allocAPILink picks the first /29 of APIRange that no address of the
// root namespace overlaps and calls create with it, all under a file lock,
// so that a lab built at the same time by another process sees the
// address create added and picks another.
func allocAPILink(ctx context.Context, create func(netip.Prefix) error) (netip.Prefix, error) {
	unlock, err := lockFile(ctx, apiLockPath())
	if err != nil {
		return netip.Prefix{}, err
	}
	defer unlock()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("seed: root namespace addresses: %w", err)
	}
	var used []netip.Prefix
	for _, a := range addrs {
		if p, ok := ipNetPrefix(a); ok {
			used = append(used, p)
		}
	}
	p, ok := freeAPILink(used)
	if !ok {
		return netip.Prefix{}, fmt.Errorf("seed: every /%d of %s overlaps an address of the root namespace: too many labs running?", apiBits, APIRange)
	}
	return p, create(p)
}

// freeAPILink returns the first /29 of APIRange that holds no LAN host
// (a node would reach that host over the API link instead of the LAN) and
// that none of used overlaps.
func freeAPILink(used []netip.Prefix) (netip.Prefix, bool) {
	for _, h := range hostTable(2) {
		used = append(used, netip.PrefixFrom(h.Addr4, 32))
	}
	for a := APIRange.Addr(); APIRange.Contains(a); {
		cand := netip.PrefixFrom(a, apiBits)
		free := true
		for _, u := range used {
			if u.Overlaps(cand) {
				free = false
				break
			}
		}
		if free {
			return cand, true
		}
		for range 1 << (32 - apiBits) {
			a = a.Next()
		}
	}
	return netip.Prefix{}, false
}

// lockFile takes an exclusive flock on path, waiting for it as long as
// ctx allows; the returned function releases it.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("seed: lock: %w", err)
	}
	err = lab.Poll(ctx, 10*time.Millisecond, func() (bool, error) {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return false, nil
		}
		if err != nil {
			return false, lab.Permanent(err)
		}
		return true, nil
	})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("seed: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// StartControlPlane runs etcd and kube-apiserver (package controlplane)
// with the API server bound to APIServerAddr, whatever o says about the
// bind address, and installs the CRDs of Options.CRDDir. ctx bounds the
// start. The control plane runs until its Stop or the lab's Close. Without
// binaries the error wraps controlplane.ErrNoBinaries.
func (s *Seed) StartControlPlane(ctx context.Context, o controlplane.Options) (*controlplane.Server, error) {
	if !s.api.IsValid() {
		return nil, fmt.Errorf("seed: lab %s has no API link", s.ID)
	}
	if s.isClosed() {
		return nil, fmt.Errorf("seed: lab %s is closed", s.ID)
	}
	o.BindAddress = s.APIServerAddr()
	env, err := controlplane.Run(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("seed: control plane for %s: %w", s.ID, err)
	}
	if s.opts.CRDDir != "" {
		if err := env.InstallCRDs(ctx, s.opts.CRDDir); err != nil {
			return nil, errors.Join(fmt.Errorf("seed: control plane for %s: %w", s.ID, err), env.Stop())
		}
	}
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.envs = append(s.envs, env)
	}
	s.mu.Unlock()
	if closed {
		return nil, errors.Join(fmt.Errorf("seed: lab %s closed while its control plane started", s.ID), env.Stop())
	}
	return env, nil
}

// RESTConfigFrom returns a copy of cfg whose connections are dialled from
// inside a host's namespace, as a speaker on that node makes them (and
// never through a proxy from the environment).
func (s *Seed) RESTConfigFrom(host string, cfg *rest.Config) (*rest.Config, error) {
	ns := s.Host(host)
	if ns == nil {
		return nil, fmt.Errorf("seed: no host %q in lab %s", host, s.ID)
	}
	c := rest.CopyConfig(cfg)
	c.Proxy = func(*http.Request) (*url.URL, error) { return nil, nil }
	c.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		err := ns.Do(func() error {
			var err error
			conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
	return c, nil
}

// FindCRDDir returns config/crd/bases of the bgplb source tree holding the
// working directory (tests run in their package's directory).
func FindCRDDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isModuleRoot(filepath.Join(dir, "go.mod")) {
			crds := filepath.Join(dir, "config", "crd", "bases")
			if st, err := os.Stat(crds); err != nil || !st.IsDir() {
				return "", fmt.Errorf("seed: no CRD directory %s", crds)
			}
			return crds, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("seed: not inside the github.com/bgplb/bgplb source tree")
		}
		dir = parent
	}
}

func isModuleRoot(gomod string) bool {
	f, err := os.Open(gomod)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if mod, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.TrimSpace(mod) == "github.com/bgplb/bgplb"
		}
	}
	return false
}
