package images

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bgplb/bgplb/internal/image"
)

// tinyModule writes a module whose ./lab/images/pause is a main package
// printing word: a stand-in source tree that builds in a blink.
func tinyModule(t *testing.T, dir, word string) {
	t.Helper()
	pkg := filepath.Join(dir, "lab", "images", "pause")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		filepath.Join(dir, "go.mod"):  "module example.invalid/tiny\n\ngo 1.22\n",
		filepath.Join(pkg, "main.go"): "package main\n\nfunc main() { println(\"" + word + "\") }\n",
	}
	for p, content := range files {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestEnsureCache(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	src, cache := t.TempDir(), t.TempDir()
	tinyModule(t, src, "one")
	o := Options{SourceDir: src, CacheDir: cache, Version: "v1.2.3+x", Images: []string{Pause}}
	ctx := context.Background()
	first, err := Ensure(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	p := first[Pause]
	if !p.Built || p.Ref != "docker.io/library/bgplb-pause:v1.2.3-x" || !strings.HasPrefix(p.Digest, "sha256:") {
		t.Fatalf("first Ensure: %+v", p)
	}
	checkArchive(t, p)

	second, err := Ensure(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if q := second[Pause]; q.Built || q.Archive != p.Archive || q.Digest != p.Digest {
		t.Fatalf("second Ensure of the same source: %+v, want the cached %+v", q, p)
	}

	// Another source: another binary, another archive, and the old one pruned.
	tinyModule(t, src, "two")
	third, err := Ensure(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if q := third[Pause]; !q.Built || q.Archive == p.Archive || q.Digest == p.Digest {
		t.Fatalf("Ensure after a source change: %+v, want a new build (was %+v)", q, p)
	}
	if _, err := os.Stat(p.Archive); !os.IsNotExist(err) {
		t.Errorf("the old archive %s is still there (%v)", p.Archive, err)
	}
	// Another version is another image, kept beside the first.
	o.Version = "v1.2.3"
	fourth, err := Ensure(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if q := fourth[Pause]; !q.Built || q.Ref != "docker.io/library/bgplb-pause:v1.2.3" {
		t.Fatalf("Ensure of another version: %+v", q)
	}
	if _, err := os.Stat(third[Pause].Archive); err != nil {
		t.Errorf("another version's archive went: %v", err)
	}
	for _, bad := range [][]string{{"nginx"}, {Pause, Pause}} {
		if _, err := Ensure(ctx, Options{SourceDir: src, CacheDir: cache, Images: bad}); err == nil {
			t.Errorf("Ensure of %q succeeded", bad)
		}
	}
}

// TestEnsureConcurrent: calls that overlap take turns; one builds the
// archive, the others find it.
func TestEnsureConcurrent(t *testing.T) {
	src, cache := t.TempDir(), t.TempDir()
	tinyModule(t, src, "concurrent")
	o := Options{SourceDir: src, CacheDir: cache, Images: []string{Pause}}
	var wg sync.WaitGroup
	results := make([]Set, 3)
	errs := make([]error, 3)
	for i := range results {
		wg.Go(func() { results[i], errs[i] = Ensure(context.Background(), o) })
	}
	wg.Wait()
	built := 0
	for i, r := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if r[Pause].Built {
			built++
		}
		if r[Pause].Archive != results[0][Pause].Archive {
			t.Errorf("archives %s and %s", r[Pause].Archive, results[0][Pause].Archive)
		}
	}
	if built != 1 {
		t.Errorf("%d of 3 concurrent calls built the archive, want 1", built)
	}
	left, _ := filepath.Glob(filepath.Join(cache, ".work-*"))
	if len(left) != 0 {
		t.Errorf("work directories left behind: %v", left)
	}
}

// TestEnsureLockWaitsForContext: a held lock and an ending context give
// the context's error, not a hang.
func TestEnsureLockWaitsForContext(t *testing.T) {
	cache := t.TempDir()
	unlock, err := lock(context.Background(), filepath.Join(cache, ".lock"), discard())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := lock(ctx, filepath.Join(cache, ".lock"), discard()); err != context.DeadlineExceeded {
		t.Fatalf("lock while held: %v, want the deadline", err)
	}
}

// checkArchive reads the archive's index.json: one index, named as ctr
// import and the kubelet want it.
func checkArchive(t *testing.T, img Image) {
	t.Helper()
	f, err := os.Open(img.Archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			t.Fatal("no index.json in the archive")
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name != "index.json" {
			continue
		}
		var idx struct {
			Manifests []struct {
				Digest      string
				Annotations map[string]string
			}
		}
		if err := json.NewDecoder(tr).Decode(&idx); err != nil {
			t.Fatal(err)
		}
		if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != img.Digest ||
			idx.Manifests[0].Annotations[image.ContainerdName] != img.Ref {
			t.Fatalf("index.json %+v, want %s named %s", idx, img.Digest, img.Ref)
		}
		return
	}
}

// TestEnsureAll builds the three images of this tree into an empty cache,
// then again: the second call only links (the Go build cache is warm by
// then) and hashes, and writes nothing.
func TestEnsureAll(t *testing.T) {
	// -short leaves out the build outside CI; in CI it always runs.
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("builds bgplb")
	}
	var log bytes.Buffer
	o := Options{CacheDir: t.TempDir(), Version: "v0.0.0-ensuretest", Log: slog.New(slog.NewTextHandler(&log, nil))}
	ctx := context.Background()
	start := time.Now()
	cold, err := Ensure(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	coldTook := time.Since(start)
	start = time.Now()
	warm, err := Ensure(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Ensure into an empty cache %v, again %v", coldTook.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	wantRefs := map[string]string{
		Pause:  "docker.io/library/bgplb-pause:v0.0.0-ensuretest",
		Pihole: "docker.io/library/bgplb-pihole:v0.0.0-ensuretest",
		BGPLB:  "docker.io/library/bgplb:v0.0.0-ensuretest",
	}
	for _, name := range All() {
		c, w := cold[name], warm[name]
		if !c.Built || w.Built || c.Archive != w.Archive || c.Digest != w.Digest || c.Ref != wantRefs[name] {
			t.Errorf("%s: first %+v, then %+v; want it built, then cached, named %s", name, c, w, wantRefs[name])
		}
		checkArchive(t, c)
		st, err := os.Stat(c.Archive)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s, %d kB", c.Ref, c.Digest, st.Size()/1024)
	}
	if t.Failed() {
		t.Log(log.String())
	}
}
