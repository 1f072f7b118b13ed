package image

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bgplb/bgplb/internal/image/enginetest"
	"github.com/bgplb/bgplb/lab/labtest"
)

// The tarballs `make image` writes, loaded by each engine as a user would
// and run: proof that podman, containerd and docker accept them, not only
// that go-containerregistry reads them back.

// dockerClient is the docker.io package's client: CI has no other, and a
// hand-installed newer one would hide what Debian's engine accepts.
const dockerClient = "/usr/bin/docker"

// The engine tests share one copy of the tarballs, written like hack/image
// writes them; TestMain removes it.
var tarballs struct {
	once sync.Once
	dir  string
	list []imageTarball
	err  error
}

type imageTarball struct{ kind, path string }

func TestMain(m *testing.M) {
	code := m.Run()
	if tarballs.dir != "" {
		os.RemoveAll(tarballs.dir)
	}
	os.Exit(code)
}

// hostTarballs returns the oci-archive (the multi-arch index) and the docker
// save tarball of the host's architecture.
func hostTarballs(t *testing.T) []imageTarball {
	t.Helper()
	idx := sharedIndex(t)
	tarballs.once.Do(func() {
		dir, err := os.MkdirTemp("", "bgplb-load-test-")
		if err != nil {
			tarballs.err = err
			return
		}
		tarballs.dir = dir
		ref := RefFor(testMeta.Version)
		oci := filepath.Join(dir, "bgplb-oci.tar")
		docker := filepath.Join(dir, "bgplb-"+runtime.GOARCH+".tar")
		if err := WriteLayout(filepath.Join(dir, "oci"), idx, ref); err != nil {
			tarballs.err = err
			return
		}
		if err := WriteOCIArchive(filepath.Join(dir, "oci"), oci, testMeta.Created); err != nil {
			tarballs.err = err
			return
		}
		tarballs.err = WriteDockerTarball(docker, idx, runtime.GOARCH, ref)
		tarballs.list = []imageTarball{{"oci-archive", oci}, {"docker-archive", docker}}
	})
	if tarballs.err != nil {
		t.Fatalf("writing the tarballs: %v", tarballs.err)
	}
	return tarballs.list
}

// checkVersion checks what `bgplb version` printed in a container.
func checkVersion(t *testing.T, engine, out string) {
	t.Helper()
	want := "bgplb " + testMeta.Version + " "
	if !strings.Contains(out, want) || !strings.Contains(out, "linux/"+runtime.GOARCH) {
		t.Fatalf("%s: bgplb version printed %q, want %q and linux/%s", engine, out, want, runtime.GOARCH)
	}
}

// loadedName finds the image name in a loader's output: the text between
// prefix and the end of the line (or " (", ctr's digest).
func loadedName(t *testing.T, engine, out, prefix string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			name, _, _ := strings.Cut(rest, " (")
			if !strings.HasSuffix(name, RefFor(testMeta.Version)) {
				t.Errorf("%s loaded %q, want a name ending in %s", engine, name, RefFor(testMeta.Version))
			}
			return name
		}
	}
	t.Fatalf("%s: no %q in its output:\n%s", engine, prefix, out)
	return ""
}

// TestPodmanLoad loads both tarballs with `podman load` into a private
// store and runs `bgplb version` with `podman run` (the image's entrypoint
// and user, no network).
func TestPodmanLoad(t *testing.T) {
	enginetest.Require(t, "podman")
	list := hostTarballs(t)
	root := t.TempDir()
	cg := enginetest.UniqueName("podman")
	enginetest.RemoveCgroupsAfter(t, cg)
	store := filepath.Join(root, "storage")
	runroot := filepath.Join(root, "runroot")
	tmp := filepath.Join(root, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	// Neither the host's containers.conf nor its storage.conf applies.
	env := enginetest.EngineEnv("TMPDIR="+tmp,
		"CONTAINERS_CONF="+enginetest.WriteFile(t, filepath.Join(root, "containers.conf"),
			fmt.Sprintf("[engine]\nimage_copy_tmp_dir = %q\n", tmp)),
		"CONTAINERS_STORAGE_CONF="+enginetest.WriteFile(t, filepath.Join(root, "storage.conf"),
			fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n", store, runroot)))
	global := []string{"--root", store, "--runroot", runroot, "--tmpdir", filepath.Join(root, "libpod"),
		"--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
		"--network-config-dir", filepath.Join(root, "networks")}
	podman := func(ctx context.Context, args ...string) *exec.Cmd {
		// podman 4.3 unpacks an oci-archive in /var/tmp whatever TMPDIR and
		// image_copy_tmp_dir say.
		cmd := enginetest.Isolated(ctx, t, root, []string{"/run", "/var/lib", "/var/tmp"}, `exec podman "$@"`, append(global, args...)...)
		cmd.Env = env
		return cmd
	}
	for _, tb := range list {
		t.Run(tb.kind, func(t *testing.T) {
			ctx := labtest.Context(t, time.Minute)
			out, load, err := enginetest.RunCmd(podman(ctx, "load", "-i", tb.path))
			if err != nil {
				t.Fatal(err)
			}
			name := loadedName(t, "podman load", out, "Loaded image: ")
			// The runtime's default limits (1048576 open files and processes)
			// exceed the hard limits of a sandbox without CAP_SYS_RESOURCE.
			out, run, err := enginetest.RunCmd(podman(ctx, "run", "--rm", "--pull=never", "--network=none",
				"--cgroup-parent=/"+cg, "--ulimit=nofile=1024:1024", "--ulimit=nproc=1024:1024", name, "version"))
			if err != nil {
				t.Fatal(err)
			}
			checkVersion(t, "podman run", out)
			t.Logf("podman load %v (%s), run %v: %s", load.Round(time.Millisecond), name, run.Round(time.Millisecond), strings.TrimSpace(out))
			// The next tarball is loaded into an empty store, not matched to this one.
			if _, _, err := enginetest.RunCmd(podman(ctx, "rmi", name)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCtrImport imports both tarballs with `ctr images import` (the host's
// platform only, as on a node) into a private containerd and runs
// `bgplb version` with `ctr run` (its own network namespace).
func TestCtrImport(t *testing.T) {
	c := enginetest.StartContainerd(t, "")
	list := hostTarballs(t)
	ctr := c.Ctr
	fifos := c.FifoDir()
	for _, tb := range list {
		t.Run(tb.kind, func(t *testing.T) {
			ctx := labtest.Context(t, time.Minute)
			out, load, err := enginetest.RunCmd(ctr(ctx, "images", "import", "--snapshotter", "native", tb.path))
			if err != nil {
				t.Fatal(err)
			}
			name := loadedName(t, "ctr images import", out, "unpacking ")
			// The name a kubelet looks up, from either tarball.
			if want := NormalizedName(RefFor(testMeta.Version)); name != want {
				t.Errorf("ctr named the image %q, want %q (what the kubelet looks for)", name, want)
			}
			// ctr run takes the command line whole: no entrypoint.
			out, run, err := enginetest.RunCmd(ctr(ctx, "run", "--rm", "--snapshotter", "native", "--fifo-dir", fifos,
				name, enginetest.UniqueName("c"), Entrypoint, "version"))
			if err != nil {
				t.Fatal(err)
			}
			checkVersion(t, "ctr run", out)
			t.Logf("ctr import %v (%s), run %v: %s", load.Round(time.Millisecond), name, run.Round(time.Millisecond), strings.TrimSpace(out))
			if _, _, err := enginetest.RunCmd(ctr(ctx, "images", "rm", "--sync", name)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDockerLoad loads the docker save tarball with `docker load` into a
// private dockerd (with its own containerd; no bridge, iptables or
// forwarding: the host's network is not touched) and runs `bgplb version`
// with `docker run --network none`. The oci-archive is tried too: docker
// reads OCI archives only from version 25 on.
func TestDockerLoad(t *testing.T) {
	enginetest.Require(t, "dockerd", "containerd", "containerd-shim-runc-v2", "runc", dockerClient)
	list := hostTarballs(t)
	root := t.TempDir()
	cg := enginetest.UniqueName("docker")
	enginetest.RemoveCgroupsAfter(t, cg)
	conf, ctrSock := enginetest.ContainerdConfig(t, root)
	sock := filepath.Join(root, "docker.sock")
	// containerd in dockerd's namespace: the network namespace files under
	// the exec root are mounts only that namespace sees. /etc/docker (where
	// dockerd writes key.json) comes with the docker.io package.
	script := fmt.Sprintf(`containerd --config %s >%s 2>&1 & exec "$@"`,
		enginetest.ShellQuote(conf), enginetest.ShellQuote(filepath.Join(root, "containerd.log")))
	d := enginetest.StartDaemon(t, "dockerd", root, []string{"/run", "/var/lib", "/etc/docker"}, script, "dockerd",
		"--containerd", ctrSock, "--config-file", enginetest.WriteFile(t, filepath.Join(root, "daemon.json"), "{}"),
		"--data-root", filepath.Join(root, "data"), "--exec-root", filepath.Join(root, "exec"),
		"--host", "unix://"+sock, "--pidfile", filepath.Join(root, "dockerd.pid"),
		"--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
		"--userland-proxy=false", "--storage-driver", "vfs",
		"--exec-opt", "native.cgroupdriver=cgroupfs", "--cgroup-parent", "/"+cg)
	d.WaitReady(t, time.Minute, dockerPing(sock))
	docker := func(ctx context.Context, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, dockerClient, append([]string{"--host", "unix://" + sock}, args...)...)
		cmd.Env = enginetest.EngineEnv("DOCKER_CONFIG=" + filepath.Join(root, "client"))
		return cmd
	}
	out, _, err := enginetest.RunCmd(docker(labtest.Context(t, time.Minute), "version", "--format", "{{.Server.Version}}"))
	if err != nil {
		t.Fatal(err)
	}
	server := strings.TrimSpace(out)
	for _, tb := range list {
		t.Run(tb.kind, func(t *testing.T) {
			ctx := labtest.Context(t, time.Minute)
			out, load, err := enginetest.RunCmd(docker(ctx, "load", "-i", tb.path))
			if err != nil && tb.kind == "oci-archive" && dockerMajor(server) < 25 {
				t.Logf("docker %s does not read OCI archives (docker load does from 25 on); make image writes %s for it",
					server, "bgplb-"+runtime.GOARCH+".tar")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			name := loadedName(t, "docker load", out, "Loaded image: ")
			out, run, err := enginetest.RunCmd(docker(ctx, "run", "--rm", "--pull=never", "--network=none", name, "version"))
			if err != nil {
				t.Fatal(err)
			}
			checkVersion(t, "docker run", out)
			t.Logf("docker %s load %v (%s), run %v: %s", server, load.Round(time.Millisecond), name, run.Round(time.Millisecond), strings.TrimSpace(out))
			if _, _, err := enginetest.RunCmd(docker(ctx, "rmi", name)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func dockerMajor(version string) int {
	major, _, _ := strings.Cut(version, ".")
	n, err := strconv.Atoi(major)
	if err != nil {
		return 0
	}
	return n
}

// dockerPing is dockerd's readiness: its API answers /_ping.
func dockerPing(sock string) func() error {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	return func() error {
		resp, err := c.Get("http://dockerd/_ping")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/_ping: %s", resp.Status)
		}
		return nil
	}
}
