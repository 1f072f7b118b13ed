package image

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// BundleOptions adjust the runtime spec Bundle writes. The zero value is a
// locked-down container: the image's user, its own network namespace, a
// read-only root, no capabilities, no new privileges. The other fields are
// what a kubelet derives from a pod's spec.
type BundleOptions struct {
	// Command replaces the image's entrypoint, and then its Cmd too, as a
	// container's command does.
	Command []string
	// Args follow the entrypoint (or Command) and replace the image's Cmd,
	// as a container's args do.
	Args []string
	// HostNetwork leaves out the network namespace (the speaker's
	// hostNetwork: true): the process shares the runtime's.
	HostNetwork bool
	// NetworkNamespace is the path of a network namespace to join, such as
	// /run/netns/NAME: a pod's sandbox, or the node's for a hostNetwork pod
	// when the node is itself a namespace, as in the lab. It takes
	// precedence over HostNetwork.
	NetworkNamespace string
	// Env is appended to the image's environment.
	Env []string
	// User is "uid[:gid]" to run as instead of the image's user (a pod's
	// runAsUser and runAsGroup). Without a gid the group is the uid's.
	User string
	// Capabilities are the ones the process holds (bounding, permitted and
	// effective sets), named as the kernel does: CAP_NET_BIND_SERVICE. A
	// non-root user loses them at exec, as in Kubernetes, which sets no
	// ambient capabilities.
	Capabilities []string
	// WritableRoot mounts the root file system read-write
	// (readOnlyRootFilesystem: false).
	WritableRoot bool
	// NewPrivileges lets setuid binaries and file capabilities raise the
	// process's privileges (allowPrivilegeEscalation: true).
	NewPrivileges bool
	// Mounts are added after /proc, /dev and /sys: a pod's volumes.
	Mounts []Mount
	// Hostname is the container's; empty means "bgplb".
	Hostname string
	// MemoryLimit, if positive, caps the container's memory in bytes (a
	// container's resources.limits.memory).
	MemoryLimit int64
}

// Mount is one entry of the runtime spec's mounts.
type Mount struct {
	Destination string   `json:"destination"`
	Type        string   `json:"type,omitempty"`
	Source      string   `json:"source,omitempty"`
	Options     []string `json:"options,omitempty"`
}

// Bundle unpacks img into an OCI runtime bundle at dir (dir/rootfs and
// dir/config.json) the way a container engine would: the process is the
// image's entrypoint and args, as the image's user, with its environment,
// changed as opts say. runc run or crun run starts it.
func Bundle(img v1.Image, dir string, opts BundleOptions) error {
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	user := cf.Config.User
	if opts.User != "" {
		user = opts.User
	}
	uid, gid, err := numericUser(user)
	if err != nil {
		return err
	}
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return err
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	if err := untar(rc, rootfs); err != nil {
		return err
	}
	cwd := cf.Config.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	p := process{
		args: processArgs(cf.Config.Entrypoint, cf.Config.Cmd, opts.Command, opts.Args),
		env:  append(append([]string{}, cf.Config.Env...), opts.Env...),
		cwd:  cwd, uid: uid, gid: gid,
	}
	b, err := json.MarshalIndent(runtimeSpec(p, opts), "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
}

// processArgs combines the image's entrypoint and Cmd with a container's
// command and args by Kubernetes' rules: command replaces both of the
// image's, args replace its Cmd.
func processArgs(entrypoint, cmd, command, args []string) []string {
	if command != nil {
		entrypoint, cmd = command, nil
	}
	if args != nil {
		cmd = args
	}
	return append(append([]string{}, entrypoint...), cmd...)
}

// numericUser parses "uid[:gid]"; names would need the image's /etc/passwd,
// which this image does not have.
func numericUser(user string) (uid, gid uint32, err error) {
	if user == "" {
		return 0, 0, nil
	}
	u, g, hasGID := strings.Cut(user, ":")
	n, err := strconv.ParseUint(u, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("image user %q is not numeric", user)
	}
	uid, gid = uint32(n), uint32(n)
	if hasGID {
		m, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return 0, 0, fmt.Errorf("image group %q is not numeric", user)
		}
		gid = uint32(m)
	}
	return uid, gid, nil
}

// process is what the runtime spec's process starts from.
type process struct {
	args, env []string
	cwd       string
	uid, gid  uint32
}

// runtimeSpec is a minimal OCI runtime config (runtime-spec 1.0), written
// as plain maps to keep the runtime-spec module out of go.mod.
func runtimeSpec(p process, o BundleOptions) map[string]any {
	caps := append([]string{}, o.Capabilities...)
	hostname := o.Hostname
	if hostname == "" {
		hostname = "bgplb"
	}
	mounts := append([]Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs",
			Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs",
			Options: []string{"nosuid", "noexec", "nodev", "ro"}},
	}, o.Mounts...)
	linux := map[string]any{
		"namespaces":    namespaces(o),
		"maskedPaths":   []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"},
		"readonlyPaths": []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
	}
	if o.MemoryLimit > 0 {
		linux["resources"] = map[string]any{"memory": map[string]int64{"limit": o.MemoryLimit}}
	}
	return map[string]any{
		"ociVersion": "1.0.2",
		"process": map[string]any{
			"terminal":        false,
			"user":            map[string]uint32{"uid": p.uid, "gid": p.gid},
			"args":            p.args,
			"env":             p.env,
			"cwd":             p.cwd,
			"noNewPrivileges": !o.NewPrivileges,
			"capabilities": map[string][]string{
				"bounding": caps, "effective": caps, "permitted": caps, "ambient": {},
			},
			"rlimits": []map[string]any{{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}},
		},
		"root":     map[string]any{"path": "rootfs", "readonly": !o.WritableRoot},
		"hostname": hostname,
		"mounts":   mounts,
		"linux":    linux,
	}
}

// namespaces are the container's own namespaces, and the network one it
// joins or shares.
func namespaces(o BundleOptions) []map[string]string {
	ns := []map[string]string{{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}}
	switch {
	case o.NetworkNamespace != "":
		ns = append(ns, map[string]string{"type": "network", "path": o.NetworkNamespace})
	case !o.HostNetwork:
		ns = append(ns, map[string]string{"type": "network"})
	}
	return ns
}

// untar writes the flattened filesystem of an image into root. Entries that
// would leave root are refused.
func untar(r io.Reader, root string) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		rel := filepath.Clean("/" + hdr.Name)
		if rel == "/" {
			continue
		}
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(hdr.Mode & 0o7777)
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, mode)
		case tar.TypeReg:
			err = writeFile(p, tr, mode)
		case tar.TypeSymlink:
			err = os.Symlink(hdr.Linkname, p)
		default:
			err = fmt.Errorf("%s: unsupported tar entry type %q", hdr.Name, hdr.Typeflag)
		}
		if err != nil {
			return err
		}
	}
}

func writeFile(p string, r io.Reader, mode os.FileMode) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Chmod(p, mode)
}

// OCIRuntime is the path of runc, else crun: the OCI runtimes that run a
// bundle (both from Debian).
func OCIRuntime() (string, error) {
	for _, rt := range []string{"runc", "crun"} {
		if p, err := exec.LookPath(rt); err == nil {
			return p, nil
		}
	}
	return "", errors.New("neither runc nor crun is installed")
}
