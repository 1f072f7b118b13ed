// Package images builds the lab's container images in-tree, so a node's
// containerd needs no registry: the pod sandbox's pause image, the Pi-hole
// stand-in's DNS image, and bgplb's own image, each one static binary on an
// empty base (internal/image), for the host's architecture, as OCI archives
// that `ctr -n k8s.io images import` takes (the index names the image as
// the kubelet looks it up). Ensure caches them under ~/.cache/bgplb/images.
package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/bgplb/bgplb/internal/image"
)

// The names of the images Ensure builds.
const (
	Pause  = "pause"
	Pihole = "pihole"
	BGPLB  = "bgplb"
)

// SpecFor is the image name's spec. The pause image runs as the upstream
// one does, as 65535; the Pi-hole's runs as root, as port 53 is privileged
// and a non-root user loses its capabilities at exec.
func SpecFor(name string) (image.Spec, bool) {
	switch name {
	case Pause:
		return image.Spec{Package: "./lab/images/pause", Entrypoint: "/pause", User: "65535:65535", Title: "bgplb-pause"}, true
	case Pihole:
		return image.Spec{Package: "./lab/images/pihole", Entrypoint: "/pihole", User: "0:0", Title: "bgplb-pihole"}, true
	case BGPLB:
		return image.BGPLB, true
	}
	return image.Spec{}, false
}

// All is every image Ensure builds by default, in its order.
func All() []string { return []string{Pause, Pihole, BGPLB} }

// Ref is the short name of image name at version: bgplb's usual one
// (image.RefFor), bgplb-NAME:TAG for the others.
func Ref(name, version string) string {
	if name == BGPLB {
		return image.RefFor(version)
	}
	return "bgplb-" + name + ":" + image.Tag(version)
}

// Options say what Ensure builds and where it keeps it. The zero value
// builds all three from the module in the working directory, version
// "dev", for the host's architecture, into the default cache.
type Options struct {
	// SourceDir is the root of bgplb's module (default: the module of the
	// working directory).
	SourceDir string
	// CacheDir holds the archives (default: $BGPLB_CACHE/images, else
	// ~/.cache/bgplb/images).
	CacheDir string
	// Version is baked into bgplb and the labels, and tags the images.
	Version string
	// Arch is the GOARCH to build for (default: the host's).
	Arch string
	// Images are the names to build (default: All()).
	Images []string
	// Log gets a line per step (default: none).
	Log *slog.Logger
}

// Image is one archive Ensure produced or found.
type Image struct {
	Name string
	// Ref is the name the archive gives the image on import, and the one a
	// pod spec uses: docker.io/library/bgplb-pause:TAG.
	Ref string
	// Archive is the OCI archive's path.
	Archive string
	// Digest is the image index's.
	Digest string
	// Built is false when the archive came from the cache.
	Built bool
}

// Set is what Ensure returns, by name.
type Set map[string]Image

// Ensure builds the images o names, or finds them in the cache. The key of
// an archive is a hash of everything it is made from: the binary go build
// writes (with a warm Go cache, a link; it covers the toolchain and every
// source file that goes in), the image's spec, labels and architecture.
// Concurrent calls, from this process or others, take turns on a lock in
// the cache directory; archives appear by rename, whole or not at all.
func Ensure(ctx context.Context, o Options) (Set, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	specs, err := specsFor(o.Images)
	if err != nil {
		return nil, err
	}
	log := o.Log
	if log == nil {
		log = discard()
	}
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lock(ctx, filepath.Join(o.CacheDir, ".lock"), log)
	if err != nil {
		return nil, err
	}
	defer unlock()
	work, err := os.MkdirTemp(o.CacheDir, ".work-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	meta, err := metaFor(o)
	if err != nil {
		return nil, err
	}
	// The builds run side by side: warm, each is mostly a link, and the
	// small ones hide behind bgplb's.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	imgs := make([]Image, len(o.Images))
	errs := make([]error, len(o.Images))
	var wg sync.WaitGroup
	for i, name := range o.Images {
		wg.Go(func() {
			imgs[i], errs[i] = ensureOne(ctx, o, work, name, specs[i], meta, log)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("images: %s: %w", name, errs[i])
				cancel()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	set := Set{}
	for _, img := range imgs {
		set[img.Name] = img
	}
	return set, nil
}

// specsFor looks the names up; each may appear once, as each builds into
// its own files.
func specsFor(names []string) ([]image.Spec, error) {
	specs := make([]image.Spec, len(names))
	seen := map[string]bool{}
	for i, name := range names {
		var ok bool
		if specs[i], ok = SpecFor(name); !ok {
			return nil, fmt.Errorf("images: no image %q (have %s)", name, strings.Join(All(), ", "))
		}
		if seen[name] {
			return nil, fmt.Errorf("images: %s named twice", name)
		}
		seen[name] = true
	}
	return specs, nil
}

func (o Options) withDefaults() (Options, error) {
	if o.SourceDir == "" {
		dir, err := moduleRoot()
		if err != nil {
			return o, err
		}
		o.SourceDir = dir
	}
	if o.CacheDir == "" {
		dir, err := DefaultCacheDir()
		if err != nil {
			return o, err
		}
		o.CacheDir = dir
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Arch == "" {
		o.Arch = runtime.GOARCH
	}
	if o.Images == nil {
		o.Images = All()
	}
	return o, nil
}

// DefaultCacheDir is $BGPLB_CACHE/images, else ~/.cache/bgplb/images, as
// hack/k8sbin.sh places the Kubernetes binaries.
func DefaultCacheDir() (string, error) {
	if c := os.Getenv("BGPLB_CACHE"); c != "" {
		return filepath.Join(c, "images"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("images: no cache directory: %w", err)
	}
	return filepath.Join(home, ".cache", "bgplb", "images"), nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command(image.GoCommand(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("images: go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("images: not inside a Go module: set Options.SourceDir")
	}
	return filepath.Dir(mod), nil
}

// metaFor labels the images as hack/image does: the commit and its time,
// so rebuilding the same commit gives the same archives.
func metaFor(o Options) (image.Meta, error) {
	created, err := image.SourceDateEpoch(o.SourceDir)
	if err != nil {
		return image.Meta{}, err
	}
	return image.Meta{Version: o.Version, Revision: image.Revision(o.SourceDir),
		Source: image.ModuleSource(o.SourceDir), Created: created}, nil
}

// ensureOne builds name's binary, and its archive unless the cache has it.
func ensureOne(ctx context.Context, o Options, work, name string, spec image.Spec, meta image.Meta, log *slog.Logger) (Image, error) {
	start := time.Now()
	bin := filepath.Join(work, name+"-linux-"+o.Arch)
	if err := spec.GoBuild(ctx, "", o.SourceDir, o.Arch, meta.Version, bin); err != nil {
		return Image{}, err
	}
	binSum, err := fileSum(bin)
	if err != nil {
		return Image{}, err
	}
	ref := Ref(name, o.Version)
	img := Image{Name: name, Ref: image.NormalizedName(ref)}
	key := cacheKey(spec, meta, o.Arch, ref, binSum)
	stem := fmt.Sprintf("%s-%s-%s", name, image.Tag(o.Version), o.Arch)
	img.Archive = filepath.Join(o.CacheDir, stem+"-"+key[:16]+".oci.tar")
	if d, err := os.ReadFile(img.Archive + ".digest"); err == nil {
		if _, err := os.Stat(img.Archive); err == nil {
			img.Digest = strings.TrimSpace(string(d))
			log.Info("image cached", "image", img.Ref, "archive", img.Archive, "took", time.Since(start).Round(time.Millisecond))
			return img, nil
		}
	}
	idx, err := spec.Index([]string{o.Arch}, map[string]string{o.Arch: bin}, meta)
	if err != nil {
		return Image{}, err
	}
	digest, err := idx.Digest()
	if err != nil {
		return Image{}, err
	}
	if err := writeArchive(work, img.Archive, idx, ref, meta.Created); err != nil {
		return Image{}, err
	}
	img.Digest, img.Built = digest.String(), true
	if err := writeAtomic(img.Archive+".digest", []byte(img.Digest+"\n")); err != nil {
		return Image{}, err
	}
	prune(o.CacheDir, stem, img.Archive, log)
	log.Info("image built", "image", img.Ref, "digest", img.Digest, "archive", img.Archive, "took", time.Since(start).Round(time.Millisecond))
	return img, nil
}

// cacheKey hashes what an archive is a function of. The format number
// changes when the way images are put together does.
func cacheKey(spec image.Spec, meta image.Meta, arch, ref, binSum string) string {
	h := sha256.New()
	fmt.Fprintf(h, "format 1\nspec %q %q %q %q\narch %s\nref %q\nbinary %s\n",
		spec.Package, spec.Entrypoint, spec.User, spec.Title, arch, ref, binSum)
	fmt.Fprintf(h, "meta %q %q %q %d\n", meta.Version, meta.Revision, meta.Source, meta.Created.Unix())
	return hex.EncodeToString(h.Sum(nil))
}

func fileSum(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
