package enginetest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// EngineEnv is the environment without the variables that would point a
// client at the host's engines or configuration, plus extra.
func EngineEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "DOCKER_") || strings.HasPrefix(k, "CONTAINERS_") || strings.HasPrefix(k, "CONTAINERD_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// WriteFile writes content to path and returns path.
func WriteFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// ContainerdConfig writes a containerd configuration that keeps everything
// below root: no CRI, no snapshotter that probes kernel modules or file
// systems, its sockets in root. It returns the file and the socket.
func ContainerdConfig(t *testing.T, root string) (string, string) {
	t.Helper()
	sock := filepath.Join(root, "containerd.sock")
	q := strconv.Quote
	conf := fmt.Sprintf(`version = 2
root = %s
state = %s
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = %s
[ttrpc]
  address = %s
[plugins."io.containerd.internal.v1.opt"]
  path = %s
`, q(filepath.Join(root, "containerd", "root")), q(filepath.Join(root, "containerd", "state")),
		q(sock), q(sock+".ttrpc"), q(filepath.Join(root, "containerd", "opt")))
	return WriteFile(t, filepath.Join(root, "containerd.toml"), conf), sock
}

// Containerd is a private containerd started by StartContainerd, with a
// containerd namespace of its own.
type Containerd struct {
	*Daemon
	Root      string
	Socket    string
	Namespace string
}

// StartContainerd starts a private containerd (see ContainerdConfig) in the
// network namespace at the path netns ("" for the caller's), waits until
// ctr reaches it, and stops it when the test ends. The cgroups of its
// containers (ctr puts them at /NAMESPACE/ID) are removed after it stopped.
func StartContainerd(t *testing.T, netns string) *Containerd {
	t.Helper()
	Require(t, "containerd", "ctr", "containerd-shim-runc-v2", "runc")
	c := &Containerd{Root: t.TempDir(), Namespace: UniqueName("ctr")}
	RemoveCgroupsAfter(t, c.Namespace)
	conf, sock := ContainerdConfig(t, c.Root)
	c.Socket = sock
	c.Daemon = StartDaemonIn(t, netns, "containerd", c.Root, []string{"/run", "/var/lib"}, `exec "$@"`,
		"containerd", "--config", conf)
	c.WaitReady(t, time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _, err := RunCmd(c.Ctr(ctx, "version"))
		return err
	})
	return c
}

// Ctr returns `ctr` with args, talking to this containerd in its namespace.
func (c *Containerd) Ctr(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"--address", c.Socket, "--namespace", c.Namespace}, args...)...)
	cmd.Env = EngineEnv()
	return cmd
}

// FifoDir is where ctr run keeps a container's stdio fifos (below Root,
// not the host's /run).
func (c *Containerd) FifoDir() string { return filepath.Join(c.Root, "fifo") }
