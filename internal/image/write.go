package image

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

var badTagChars = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// Tag turns a version (git describe output, possibly with '+' build
// metadata) into a valid image tag.
func Tag(version string) string {
	t := badTagChars.ReplaceAllString(version, "-")
	if t == "" || t[0] == '.' || t[0] == '-' {
		t = "v" + t
	}
	if len(t) > 128 {
		t = t[:128]
	}
	return t
}

// RefFor is the local image name for version: no registry, so that the
// loading engine puts it under its own default (localhost/ for podman).
func RefFor(version string) string { return "bgplb:" + Tag(version) }

// NormalizedName is ref as container runtimes normalize a name without a
// registry: docker.io/library/NAME.
func NormalizedName(ref string) string {
	first, _, found := strings.Cut(ref, "/")
	switch {
	case !found:
		return "docker.io/library/" + ref
	case strings.ContainsAny(first, ".:") || first == "localhost":
		return ref
	}
	return "docker.io/" + ref
}

// WriteLayout writes idx as an OCI image layout at dir (replacing what is
// there), its index.json naming the multi-arch index ref.
func WriteLayout(dir string, idx v1.ImageIndex, ref string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendIndex(idx, layout.WithAnnotations(map[string]string{RefName: ref, ContainerdName: NormalizedName(ref)}))
}

// WriteOCIArchive tars the layout at dir into file (the oci-archive format
// that podman load, skopeo and ctr images import read), with sorted
// entries and fixed owners, modes and times so the archive is reproducible.
func WriteOCIArchive(dir, file string, mtime time.Time) error {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	for _, p := range paths {
		if err := addToTar(tw, dir, p, mtime); err != nil {
			f.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func addToTar(tw *tar.Writer, root, p string, mtime time.Time) error {
	st, err := os.Lstat(p)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: filepath.ToSlash(rel), ModTime: mtime.UTC(), Format: tar.FormatPAX}
	switch {
	case st.IsDir():
		hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, hdr.Name+"/", 0o755
		return tw.WriteHeader(hdr)
	case st.Mode().IsRegular():
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, st.Size()
	default:
		return fmt.Errorf("%s: not a file or directory", p)
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}

// ArchImage returns the image for linux/arch from idx.
func ArchImage(idx v1.ImageIndex, arch string) (v1.Image, error) {
	imgs, err := partial.FindImages(idx, match.Platforms(v1.Platform{OS: "linux", Architecture: arch}))
	if err != nil {
		return nil, err
	}
	if len(imgs) != 1 {
		return nil, fmt.Errorf("index has %d images for linux/%s, want 1", len(imgs), arch)
	}
	return imgs[0], nil
}

// WriteDockerTarball writes the linux/arch image of idx as a docker save
// tarball (manifest.json, RepoTags ref) that docker load and podman load
// read; that format holds one architecture per name.
func WriteDockerTarball(file string, idx v1.ImageIndex, arch, ref string) error {
	img, err := ArchImage(idx, arch)
	if err != nil {
		return err
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	return tarball.MultiRefWriteToFile(file, map[name.Reference]v1.Image{tag: img})
}
