package image

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// BundleOptions adjust the runtime spec Bundle writes.
type BundleOptions struct {
	// Args follow the image's entrypoint and replace its Cmd, as a pod's
	// args do.
	Args []string
	// HostNetwork leaves out the network namespace (the speaker's
	// hostNetwork: true).
	HostNetwork bool
	// Env is appended to the image's environment.
	Env []string
}

// Bundle unpacks img into an OCI runtime bundle at dir (dir/rootfs and
// dir/config.json) the way a container engine would: the process is the
// image's entrypoint and args, as the image's user, with its environment,
// on a read-only root, with no capabilities. runc run or crun run starts it.
func Bundle(img v1.Image, dir string, opts BundleOptions) error {
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	uid, gid, err := numericUser(cf.Config.User)
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
	args := append(append([]string{}, cf.Config.Entrypoint...), cf.Config.Cmd...)
	if opts.Args != nil {
		args = append(append([]string{}, cf.Config.Entrypoint...), opts.Args...)
	}
	cwd := cf.Config.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	spec := runtimeSpec(args, append(append([]string{}, cf.Config.Env...), opts.Env...), cwd, uid, gid, opts.HostNetwork)
	b, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
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

// runtimeSpec is a minimal OCI runtime config (runtime-spec 1.0), written
// as plain maps to keep the runtime-spec module out of go.mod.
func runtimeSpec(args, env []string, cwd string, uid, gid uint32, hostNet bool) map[string]any {
	namespaces := []map[string]string{{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}}
	if !hostNet {
		namespaces = append(namespaces, map[string]string{"type": "network"})
	}
	none := []string{}
	return map[string]any{
		"ociVersion": "1.0.2",
		"process": map[string]any{
			"terminal":        false,
			"user":            map[string]uint32{"uid": uid, "gid": gid},
			"args":            args,
			"env":             env,
			"cwd":             cwd,
			"noNewPrivileges": true,
			"capabilities": map[string][]string{
				"bounding": none, "effective": none, "permitted": none, "ambient": none,
			},
			"rlimits": []map[string]any{{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}},
		},
		"root":     map[string]any{"path": "rootfs", "readonly": true},
		"hostname": "bgplb",
		"mounts": []map[string]any{
			{"destination": "/proc", "type": "proc", "source": "proc"},
			{"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
				"options": []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{"destination": "/sys", "type": "sysfs", "source": "sysfs",
				"options": []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		"linux": map[string]any{
			"namespaces":    namespaces,
			"maskedPaths":   []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"},
			"readonlyPaths": []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
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
