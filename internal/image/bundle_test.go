package image

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// runtimeConfig is the part of config.json the tests read back.
type runtimeConfig struct {
	Process struct {
		User struct {
			UID uint32 `json:"uid"`
			GID uint32 `json:"gid"`
		} `json:"user"`
		Args            []string            `json:"args"`
		Env             []string            `json:"env"`
		NoNewPrivileges bool                `json:"noNewPrivileges"`
		Capabilities    map[string][]string `json:"capabilities"`
	} `json:"process"`
	Root struct {
		Path     string `json:"path"`
		Readonly bool   `json:"readonly"`
	} `json:"root"`
	Hostname string  `json:"hostname"`
	Mounts   []Mount `json:"mounts"`
	Linux    struct {
		Namespaces []map[string]string `json:"namespaces"`
		Resources  *struct {
			Memory struct {
				Limit int64 `json:"limit"`
			} `json:"memory"`
		} `json:"resources"`
	} `json:"linux"`
}

func bundleConfig(t *testing.T, opts BundleOptions) runtimeConfig {
	t.Helper()
	img, err := Image([]byte("not really a binary"), "amd64", testMeta)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := Bundle(img, dir, opts); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "rootfs", "bgplb")); err != nil || string(b) != "not really a binary" {
		t.Fatalf("rootfs/bgplb: %q, %v", b, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c runtimeConfig
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("config.json: %v\n%s", err, b)
	}
	return c
}

func networkNamespace(c runtimeConfig) (entry map[string]string, ok bool) {
	i := slices.IndexFunc(c.Linux.Namespaces, func(n map[string]string) bool { return n["type"] == "network" })
	if i < 0 {
		return nil, false
	}
	return c.Linux.Namespaces[i], true
}

// TestBundleDefaults: without options the container is as locked down as
// the image allows: its user, its entrypoint, a network namespace of its
// own, a read-only root, no capabilities, no new privileges.
func TestBundleDefaults(t *testing.T) {
	c := bundleConfig(t, BundleOptions{})
	if c.Process.User.UID != 65532 || c.Process.User.GID != 65532 {
		t.Errorf("user %+v, want the image's 65532:65532", c.Process.User)
	}
	if !slices.Equal(c.Process.Args, []string{Entrypoint}) {
		t.Errorf("args %q", c.Process.Args)
	}
	if !c.Root.Readonly || !c.Process.NoNewPrivileges || c.Hostname != "bgplb" {
		t.Errorf("root %+v, noNewPrivileges %v, hostname %q", c.Root, c.Process.NoNewPrivileges, c.Hostname)
	}
	for set, caps := range c.Process.Capabilities {
		if len(caps) != 0 {
			t.Errorf("capabilities %s: %v, want none", set, caps)
		}
	}
	if n, ok := networkNamespace(c); !ok || n["path"] != "" {
		t.Errorf("network namespace %v, want a new one", n)
	}
	if len(c.Mounts) != 3 || c.Linux.Resources != nil {
		t.Errorf("mounts %+v, resources %+v: want only /proc, /dev, /sys and no limits", c.Mounts, c.Linux.Resources)
	}
}

// TestBundlePodOptions: what a kubelet makes of the speaker's pod spec
// reaches config.json.
func TestBundlePodOptions(t *testing.T) {
	sa := Mount{Destination: "/var/run/secrets/kubernetes.io/serviceaccount", Type: "bind", Source: "/tmp/sa", Options: []string{"rbind", "ro"}}
	run := Mount{Destination: "/run/bgplb", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1048576"}}
	c := bundleConfig(t, BundleOptions{
		Command:          []string{"/bgplb"},
		Args:             []string{"speaker", "--node-name=node1"},
		NetworkNamespace: "/run/netns/lab-node1",
		HostNetwork:      true,
		Env:              []string{"NODE_NAME=node1"},
		User:             "0:0",
		Capabilities:     []string{"CAP_NET_BIND_SERVICE"},
		Mounts:           []Mount{run, sa},
		Hostname:         "node1",
		MemoryLimit:      256 << 20,
	})
	if !slices.Equal(c.Process.Args, []string{"/bgplb", "speaker", "--node-name=node1"}) {
		t.Errorf("args %q", c.Process.Args)
	}
	if c.Process.User.UID != 0 || c.Process.User.GID != 0 {
		t.Errorf("user %+v, want 0:0", c.Process.User)
	}
	if !slices.Contains(c.Process.Env, "NODE_NAME=node1") {
		t.Errorf("env %q", c.Process.Env)
	}
	for _, set := range []string{"bounding", "effective", "permitted"} {
		if !slices.Equal(c.Process.Capabilities[set], []string{"CAP_NET_BIND_SERVICE"}) {
			t.Errorf("capabilities %s: %v", set, c.Process.Capabilities[set])
		}
	}
	if len(c.Process.Capabilities["ambient"]) != 0 {
		t.Errorf("ambient capabilities %v", c.Process.Capabilities["ambient"])
	}
	if n, ok := networkNamespace(c); !ok || n["path"] != "/run/netns/lab-node1" {
		t.Errorf("network namespace %v, want to join /run/netns/lab-node1", n)
	}
	if len(c.Mounts) != 5 || !mountEqual(c.Mounts[3], run) || !mountEqual(c.Mounts[4], sa) {
		t.Errorf("mounts %+v, want the pod's two after the standard three", c.Mounts)
	}
	if c.Hostname != "node1" || c.Linux.Resources == nil || c.Linux.Resources.Memory.Limit != 256<<20 {
		t.Errorf("hostname %q, resources %+v", c.Hostname, c.Linux.Resources)
	}
	if !c.Root.Readonly || !c.Process.NoNewPrivileges {
		t.Errorf("root %+v, noNewPrivileges %v", c.Root, c.Process.NoNewPrivileges)
	}

	c = bundleConfig(t, BundleOptions{HostNetwork: true, WritableRoot: true, NewPrivileges: true})
	if _, ok := networkNamespace(c); ok {
		t.Errorf("hostNetwork: a network namespace %v", c.Linux.Namespaces)
	}
	if c.Root.Readonly || c.Process.NoNewPrivileges {
		t.Errorf("root %+v, noNewPrivileges %v: want writable, new privileges allowed", c.Root, c.Process.NoNewPrivileges)
	}
}

func mountEqual(a, b Mount) bool {
	return a.Destination == b.Destination && a.Type == b.Type && a.Source == b.Source && slices.Equal(a.Options, b.Options)
}

// TestProcessArgs: Kubernetes' rules for command and args over the image's
// entrypoint and Cmd.
func TestProcessArgs(t *testing.T) {
	ep, cmd := []string{"/bgplb"}, []string{"version"}
	for _, tc := range []struct {
		command, args, want []string
	}{
		{nil, nil, []string{"/bgplb", "version"}},
		{nil, []string{"speaker"}, []string{"/bgplb", "speaker"}},
		{[]string{"/other"}, nil, []string{"/other"}},
		{[]string{"/other"}, []string{"x"}, []string{"/other", "x"}},
	} {
		if got := processArgs(ep, cmd, tc.command, tc.args); !slices.Equal(got, tc.want) {
			t.Errorf("command %q args %q: %q, want %q", tc.command, tc.args, got, tc.want)
		}
	}
}
