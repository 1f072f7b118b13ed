package image

import (
	"archive/tar"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The generalisation without a Go build: a Spec's image of given bytes is
// a function of them, and its layer and config say what the Spec says.
func TestSpecImage(t *testing.T) {
	pause := Spec{Package: "./lab/images/pause", Entrypoint: "/pause", User: "65535:65535", Title: "bgplb-pause"}
	for _, c := range []struct {
		name                     string
		spec                     Spec
		file, user, title, entry string
	}{
		{"pause", pause, "pause", "65535:65535", "bgplb-pause", "/pause"},
		{"bgplb", BGPLB, "bgplb", User, "bgplb", Entrypoint},
		{"defaults", Spec{Package: "./x", Entrypoint: "/usr/bin/thing"}, "usr/bin/thing", "", "thing", "/usr/bin/thing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bin := []byte("#!not really a binary " + c.name)
			first, err := c.spec.Image(bin, "arm64", testMeta)
			if err != nil {
				t.Fatal(err)
			}
			second, err := c.spec.Image(bin, "arm64", testMeta)
			if err != nil {
				t.Fatal(err)
			}
			d1, _ := first.Digest()
			d2, _ := second.Digest()
			if d1 != d2 {
				t.Fatalf("same input, digests %s and %s", d1, d2)
			}
			other, _ := c.spec.Image(append(bin, '!'), "arm64", testMeta)
			if d3, _ := other.Digest(); d3 == d1 {
				t.Fatalf("another binary, the same digest %s", d1)
			}
			cf, err := first.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != c.entry || cf.Config.User != c.user ||
				cf.Config.Labels[LabelTitle] != c.title || cf.Config.Labels[LabelVersion] != testMeta.Version ||
				cf.Architecture != "arm64" || cf.OS != "linux" {
				t.Errorf("config %+v on %s/%s", cf.Config, cf.OS, cf.Architecture)
			}
			if got := layerFiles(t, first); len(got) != 1 || got[c.file] != string(bin) {
				t.Errorf("layer holds %v, want only %s", got, c.file)
			}
		})
	}
}

// TestBGPLBWrappers: the package functions are BGPLB's methods, so bgplb's
// image is what it was before Spec.
func TestBGPLBWrappers(t *testing.T) {
	bin := []byte("bgplb")
	a, err := Image(bin, "amd64", testMeta)
	if err != nil {
		t.Fatal(err)
	}
	b, err := BGPLB.Image(bin, "amd64", testMeta)
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Fatalf("Image %s, BGPLB.Image %s", da, db)
	}
	if got := testMeta.Labels()[LabelTitle]; got != "bgplb" {
		t.Errorf("Meta.Labels title %q", got)
	}
}

// layerFiles maps each regular file of the image's one layer to its content.
func layerFiles(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%d layers (%v), want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Uid != 0 || hdr.Gid != 0 || hdr.Mode != 0o755 || !hdr.ModTime.Equal(testMeta.Created) {
			t.Errorf("%s: uid %d gid %d mode %o mtime %v", hdr.Name, hdr.Uid, hdr.Gid, hdr.Mode, hdr.ModTime)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[hdr.Name] = string(b)
	}
}
