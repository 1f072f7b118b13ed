package kubenode

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// bind is one bind mount the holder makes in the node's mount namespace.
type bind struct {
	Source, Target string
}

// mountPlan lists the holder's binds. /run and /var become the node's own
// (containerd's sockets, shims and state; the kubelet's root, device
// plugins and pod logs; CNI's pod netns and IPAM files), and each global
// sysctl the kubelet writes gets a private file over it.
func mountPlan(l layout, sysctls []string) []bind {
	plan := []bind{
		{Source: l.runDir(), Target: "/run"},
		{Source: l.varDir(), Target: "/var"},
	}
	for _, k := range sysctls {
		plan = append(plan, bind{Source: sysctlFile(l.sysctlDir(), k), Target: "/proc/sys/" + k})
	}
	return plan
}

// holderScript is run by sh in a fresh mount namespace (unshare with
// private propagation, so no mount made inside ever reaches the machine's
// namespace): it makes the binds, says so in a file, and stays as the
// namespace's holder until Remove kills it.
func holderScript(plan []bind, readyInside string) string {
	var b strings.Builder
	b.WriteString("set -e\n")
	for _, m := range plan {
		fmt.Fprintf(&b, "mount --bind %s %s\n", shQuote(m.Source), shQuote(m.Target))
	}
	fmt.Fprintf(&b, ": > %s\nexec sleep infinity\n", shQuote(readyInside))
	return b.String()
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// prepareVar makes the node's /var: its own lib, log and tmp, and the
// usual symlinks into /run (which is the node's /run in there).
func prepareVar(l layout) error {
	for _, link := range []struct{ name, target string }{{"run", "/run"}, {"lock", "/run/lock"}} {
		p := filepath.Join(l.varDir(), link.name)
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		if err := os.Symlink(link.target, p); err != nil {
			return fmt.Errorf("kubenode: %w", err)
		}
	}
	return nil
}

// copySysctls seeds each private sysctl file with the machine's value, so
// the kubelet reads what it would read outside.
func copySysctls(l layout, keys []string) error {
	for _, k := range keys {
		v, err := os.ReadFile("/proc/sys/" + k)
		if err != nil {
			return fmt.Errorf("kubenode: sysctl %s: %w", k, err)
		}
		if err := os.WriteFile(sysctlFile(l.sysctlDir(), k), v, 0o644); err != nil {
			return fmt.Errorf("kubenode: %w", err)
		}
	}
	return nil
}

// nsOf identifies the namespace behind a /proc/PID/ns/* link.
func nsOf(path string) (nsID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nsID{}, err
	}
	return nsID{Dev: st.Dev, Ino: st.Ino}, nil
}

// fdNS identifies the namespace of an open /proc/PID/ns/* file.
func fdNS(f *os.File) (nsID, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nsID{}, err
	}
	return nsID{Dev: st.Dev, Ino: st.Ino}, nil
}
