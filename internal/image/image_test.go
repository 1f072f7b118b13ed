package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bgplb/bgplb/lab/labtest"
)

var testMeta = Meta{
	Version:  "v0.0.0-imagetest+abc",
	Revision: "0123456789abcdef0123456789abcdef01234567",
	Source:   "https://example.invalid/bgplb",
	Created:  time.Unix(1700000000, 0).UTC(),
}

// Building bgplb for two architectures takes minutes with a cold cache;
// the tests share one build, and only the reproducibility test builds again.
var shared struct {
	once sync.Once
	idx  v1.ImageIndex
	err  error
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(GoCommand(), "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func sharedIndex(t *testing.T) v1.ImageIndex {
	t.Helper()
	root := moduleRoot(t)
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "bgplb-image-test-")
		if err != nil {
			shared.err = err
			return
		}
		defer os.RemoveAll(dir)
		shared.idx, shared.err = Build(context.Background(), root, dir, DefaultArchs, testMeta)
	})
	if shared.err != nil {
		t.Fatalf("build: %v", shared.err)
	}
	return shared.idx
}

func TestReproducible(t *testing.T) {
	first := sharedIndex(t)
	second, err := Build(context.Background(), moduleRoot(t), t.TempDir(), DefaultArchs, testMeta)
	if err != nil {
		t.Fatalf("second build: %v", err)
	}
	d1, err := first.Digest()
	if err != nil {
		t.Fatal(err)
	}
	d2, err := second.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if d1 != d2 {
		t.Fatalf("two builds of the same source: index %s then %s", d1, d2)
	}
	// The written artifacts too: the oci-archive is byte for byte the same.
	var sums []string
	for i, idx := range []v1.ImageIndex{first, second} {
		dir := t.TempDir()
		if err := WriteLayout(filepath.Join(dir, "oci"), idx, RefFor(testMeta.Version)); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "a.tar")
		if err := WriteOCIArchive(filepath.Join(dir, "oci"), file, testMeta.Created); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		h, _, err := v1.SHA256(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, h.String())
		t.Logf("build %d: index %s, oci-archive %s", i+1, d1, h)
	}
	if sums[0] != sums[1] {
		t.Fatalf("oci-archives differ: %s, %s", sums[0], sums[1])
	}
}

func TestIndexPlatformsAndLabels(t *testing.T) {
	idx := sharedIndex(t)
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, m := range im.Manifests {
		platforms = append(platforms, m.Platform.String())
	}
	if got, want := strings.Join(platforms, " "), "linux/amd64 linux/arm64"; got != want {
		t.Fatalf("index platforms %q, want %q", got, want)
	}
	if im.Annotations[LabelVersion] != testMeta.Version {
		t.Errorf("index annotations %v lack the version", im.Annotations)
	}
	for _, arch := range DefaultArchs {
		img, err := ArchImage(idx, arch)
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, img, arch)
	}
}

func checkImage(t *testing.T, img v1.Image, arch string) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != arch {
		t.Errorf("%s: config platform %s/%s", arch, cf.OS, cf.Architecture)
	}
	want := map[string]string{
		LabelVersion: testMeta.Version, LabelRevision: testMeta.Revision,
		LabelSource: testMeta.Source, LabelTitle: "bgplb",
	}
	for k, v := range want {
		if cf.Config.Labels[k] != v {
			t.Errorf("%s: label %s=%q, want %q", arch, k, cf.Config.Labels[k], v)
		}
	}
	if got := strings.Join(cf.Config.Entrypoint, " "); got != Entrypoint || cf.Config.User != User {
		t.Errorf("%s: entrypoint %q user %q, want %q %q", arch, got, cf.Config.User, Entrypoint, User)
	}
	if !cf.Created.Time.Equal(testMeta.Created) {
		t.Errorf("%s: created %v, want %v", arch, cf.Created.Time, testMeta.Created)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%s: %d layers (%v), want 1", arch, len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		if hdr.Uid != 0 || hdr.Gid != 0 || hdr.Mode != 0o755 || !hdr.ModTime.Equal(testMeta.Created) {
			t.Errorf("%s: %s uid %d gid %d mode %o mtime %v", arch, hdr.Name, hdr.Uid, hdr.Gid, hdr.Mode, hdr.ModTime)
		}
	}
	// No shell, no libc: the one static binary.
	if strings.Join(names, " ") != "bgplb" {
		t.Errorf("%s: layer holds %v, want only bgplb", arch, names)
	}
}

func TestLayoutAndTarballs(t *testing.T) {
	idx := sharedIndex(t)
	dir := t.TempDir()
	ref := RefFor(testMeta.Version)
	if ref != "bgplb:v0.0.0-imagetest-abc" {
		t.Errorf("RefFor: %q", ref)
	}
	if err := WriteLayout(filepath.Join(dir, "oci"), idx, ref); err != nil {
		t.Fatal(err)
	}
	top, err := layout.ImageIndexFromPath(filepath.Join(dir, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	if len(tm.Manifests) != 1 || tm.Manifests[0].Digest != want || tm.Manifests[0].Annotations[RefName] != ref {
		t.Fatalf("layout index.json: %+v, want one descriptor %s named %s", tm.Manifests, want, ref)
	}

	file := filepath.Join(dir, "docker.tar")
	if err := WriteDockerTarball(file, idx, "amd64", ref); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := tarball.ImageFromPath(file, &tag)
	if err != nil {
		t.Fatalf("reading the docker tarball back: %v", err)
	}
	orig, _ := ArchImage(idx, "amd64")
	c1, _ := orig.ConfigName()
	c2, err := loaded.ConfigName()
	if err != nil || c1 != c2 {
		t.Fatalf("docker tarball config %s (%v), want %s", c2, err, c1)
	}
}

// TestRunsWithOCIRuntime unpacks the host architecture's image into an OCI
// bundle and runs `bgplb version` in it with runc (or crun), as a container
// engine would: the image's entrypoint, user and environment.
func TestRunsWithOCIRuntime(t *testing.T) {
	rt := ociRuntime(t)
	idx := sharedIndex(t)
	img, err := ArchImage(idx, runtime.GOARCH)
	if err != nil {
		t.Skipf("no image for the host architecture %s: %v", runtime.GOARCH, err)
	}
	bundle := t.TempDir()
	if err := Bundle(img, bundle, BundleOptions{Args: []string{"version"}}); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	id := fmt.Sprintf("bgplb-imagetest-%d-%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() {
		// run deletes the container when it exits; this covers a failure midway.
		_ = exec.Command(rt, "--root", state, "delete", "--force", id).Run()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, rt, "--root", state, "run", "--bundle", bundle, id)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s run: %v\nstdout: %s\nstderr: %s", rt, err, stdout.String(), stderr.String())
	}
	want := "bgplb " + testMeta.Version + " "
	if !strings.Contains(stdout.String(), want) || !strings.Contains(stdout.String(), "linux/"+runtime.GOARCH) {
		t.Fatalf("bgplb version in the container printed %q, want it to contain %q", stdout.String(), want)
	}
	t.Logf("%s: %s", rt, strings.TrimSpace(stdout.String()))
}

func ociRuntime(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		labtest.Missing(t, "running an OCI runtime needs root")
	}
	rt, err := OCIRuntime()
	if err != nil {
		labtest.Missing(t, "%v (hack/install-deps.sh installs runc)", err)
	}
	return rt
}

func TestNumericUser(t *testing.T) {
	for in, want := range map[string][2]uint32{"": {0, 0}, "65532": {65532, 65532}, "65532:65532": {65532, 65532}, "1:2": {1, 2}} {
		u, g, err := numericUser(in)
		if err != nil || u != want[0] || g != want[1] {
			t.Errorf("numericUser(%q) = %d, %d, %v; want %v", in, u, g, err, want)
		}
	}
	for _, in := range []string{"nonroot", "1:staff"} {
		if _, _, err := numericUser(in); err == nil {
			t.Errorf("numericUser(%q): want an error", in)
		}
	}
}

func TestNormalizedName(t *testing.T) {
	for ref, want := range map[string]string{
		"bgplb:v1":               "docker.io/library/bgplb:v1",
		"me/bgplb:v1":            "docker.io/me/bgplb:v1",
		"registry.lan/bgplb:v1":  "registry.lan/bgplb:v1",
		"registry.lan:5000/b:v1": "registry.lan:5000/b:v1",
		"localhost/bgplb:v1":     "localhost/bgplb:v1",
		"docker.io/library/b:v1": "docker.io/library/b:v1",
	} {
		if got := NormalizedName(ref); got != want {
			t.Errorf("NormalizedName(%q) = %q, want %q", ref, got, want)
		}
	}
}
