// Package image builds bgplb's container image, and the lab's other
// one-binary images (Spec), without a container engine: the static binary,
// cross-compiled per architecture, in one layer on an empty base, assembled with go-containerregistry into a multi-arch OCI
// index. Everything that goes into a digest is fixed by the source (the
// timestamps come from SOURCE_DATE_EPOCH or the commit time, tar headers
// carry no owner names or host times), so the same commit gives the same
// digest on any machine with the same Go toolchain.
package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// User is bgplb's default user: numeric, because the image has no
// /etc/passwd to resolve a name. The controller runs as this user; the
// speaker's manifest overrides it to root with only the capabilities it
// needs (it programs routes and binds port 179).
const User = "65532:65532"

// Entrypoint is where the bgplb binary sits in its image.
const Entrypoint = "/bgplb"

// The label keys of the OCI image spec's pre-defined annotations.
const (
	LabelVersion  = "org.opencontainers.image.version"
	LabelRevision = "org.opencontainers.image.revision"
	LabelSource   = "org.opencontainers.image.source"
	LabelTitle    = "org.opencontainers.image.title"
	LabelCreated  = "org.opencontainers.image.created"
	// RefName names the index inside an OCI layout; podman and ctr read it
	// as the image's name on import.
	RefName = "org.opencontainers.image.ref.name"
	// ContainerdName is the full name `ctr images import` gives the image:
	// the kubelet looks images up by their normalized name
	// (docker.io/library/bgplb:TAG), not the short one.
	ContainerdName = "io.containerd.image.name"
)

// DefaultArchs are the architectures `make image` builds: amd64 servers and
// the arm64 Raspberry Pis of home labs.
var DefaultArchs = []string{"amd64", "arm64"}

// Meta is what the labels and timestamps of an image say.
type Meta struct {
	Version  string
	Revision string
	Source   string
	// Created is every timestamp in the image (config, history, tar
	// entries): the commit time, not the build time, for reproducibility.
	Created time.Time
}

// Labels returns bgplb's org.opencontainers.image.* labels.
func (m Meta) Labels() map[string]string { return BGPLB.Labels(m) }

// Spec says which main package becomes a one-binary image and how the image
// presents it. The zero values of User and Title are root and the base name
// of Entrypoint.
type Spec struct {
	// Package is the main package, as go build takes it: "./cmd/bgplb".
	Package string
	// Entrypoint is the binary's absolute path in the image.
	Entrypoint string
	// User is "uid[:gid]", numeric (the image has no /etc/passwd).
	User string
	// Title is the org.opencontainers.image.title label.
	Title string
}

// BGPLB is bgplb's own image.
var BGPLB = Spec{Package: "./cmd/bgplb", Entrypoint: Entrypoint, User: User, Title: "bgplb"}

func (s Spec) title() string {
	if s.Title != "" {
		return s.Title
	}
	return path.Base(s.Entrypoint)
}

// Labels returns the image's org.opencontainers.image.* labels.
func (s Spec) Labels(m Meta) map[string]string {
	return map[string]string{
		LabelVersion:  m.Version,
		LabelRevision: m.Revision,
		LabelSource:   m.Source,
		LabelTitle:    s.title(),
		LabelCreated:  m.Created.UTC().Format(time.RFC3339),
	}
}

// GoBuild cross-compiles ./cmd/bgplb; see Spec.GoBuild.
func GoBuild(ctx context.Context, gocmd, dir, goarch, version, out string) error {
	return BGPLB.GoBuild(ctx, gocmd, dir, goarch, version, out)
}

// GoBuild cross-compiles s.Package of the module at dir for linux/goarch
// into out: static (no cgo), without local paths (-trimpath), without the
// build ID (it would tie the digest to more than the source), and without
// the symbol table and DWARF (-s -w: a third smaller; panics still print
// function names and lines from the runtime's own tables). version goes to
// main.version, if the package has one.
func (s Spec) GoBuild(ctx context.Context, gocmd, dir, goarch, version, out string) error {
	if gocmd == "" {
		gocmd = GoCommand()
	}
	cmd := exec.CommandContext(ctx, gocmd, "build", "-trimpath",
		"-ldflags", "-s -w -buildid= -X main.version="+version,
		"-o", out, s.Package)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for linux/%s: %w\n%s", s.Package, goarch, err, b)
	}
	return nil
}

// GoCommand is $GO, else go on PATH, else the usual /usr/local/go install
// (make exports that to PATH; a bare `go test` may not have it).
func GoCommand() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	if g, err := exec.LookPath("go"); err == nil {
		return g
	}
	return "/usr/local/go/bin/go"
}

// Layer returns bgplb's layer; see Spec.Layer.
func Layer(binary []byte, mtime time.Time) (v1.Layer, error) { return BGPLB.Layer(binary, mtime) }

// Layer returns a layer holding only the binary at s.Entrypoint, owned by
// root and executable by all (the image may run as a non-root user).
func (s Spec) Layer(binary []byte, mtime time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     strings.TrimPrefix(s.Entrypoint, "/"),
		Mode:     0o755,
		Size:     int64(len(binary)),
		ModTime:  mtime.UTC(),
		Format:   tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(binary); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// Image returns bgplb's image; see Spec.Image.
func Image(binary []byte, goarch string, meta Meta) (v1.Image, error) {
	return BGPLB.Image(binary, goarch, meta)
}

// Image returns the single-architecture image of binary for linux/goarch.
func (s Spec) Image(binary []byte, goarch string, meta Meta) (v1.Image, error) {
	layer, err := s.Layer(binary, meta.Created)
	if err != nil {
		return nil, err
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: meta.Created.UTC()},
			CreatedBy: "bgplb internal/image: " + s.Entrypoint,
			Comment:   "the static " + s.title() + " binary",
		},
		MediaType: types.OCILayer,
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = goarch
	cf.Created = v1.Time{Time: meta.Created.UTC()}
	cf.Config = v1.Config{
		Entrypoint: []string{s.Entrypoint},
		User:       s.User,
		WorkingDir: "/",
		Labels:     s.Labels(meta),
	}
	return mutate.ConfigFile(img, cf)
}

// Index returns bgplb's index; see Spec.Index.
func Index(archs []string, binaries map[string]string, meta Meta) (v1.ImageIndex, error) {
	return BGPLB.Index(archs, binaries, meta)
}

// Index returns the OCI index of one image per architecture; binaries maps
// GOARCH to the path of that architecture's binary. The manifests appear in
// the order of archs, so the index's digest does not depend on map order.
func (s Spec) Index(archs []string, binaries map[string]string, meta Meta) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range archs {
		b, err := os.ReadFile(binaries[arch])
		if err != nil {
			return nil, err
		}
		img, err := s.Image(b, arch, meta)
		if err != nil {
			return nil, fmt.Errorf("linux/%s: %w", arch, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add: img,
			Descriptor: v1.Descriptor{
				MediaType: types.OCIManifestSchema1,
				Platform:  &v1.Platform{OS: "linux", Architecture: arch},
			},
		})
	}
	return mutate.Annotations(idx, s.Labels(meta)).(v1.ImageIndex), nil
}

// Build builds bgplb's index; see Spec.Build.
func Build(ctx context.Context, dir, workdir string, archs []string, meta Meta) (v1.ImageIndex, error) {
	return BGPLB.Build(ctx, dir, workdir, archs, meta)
}

// Build compiles the binary for each of archs (into workdir) and returns
// the index of their images.
func (s Spec) Build(ctx context.Context, dir, workdir string, archs []string, meta Meta) (v1.ImageIndex, error) {
	binaries := map[string]string{}
	for _, arch := range archs {
		out := filepath.Join(workdir, s.title()+"-linux-"+arch)
		if err := s.GoBuild(ctx, "", dir, arch, meta.Version, out); err != nil {
			return nil, err
		}
		binaries[arch] = out
	}
	return s.Index(archs, binaries, meta)
}

// SourceDateEpoch is $SOURCE_DATE_EPOCH, else the time of the commit checked
// out at dir, else the Unix epoch (no git: still reproducible).
func SourceDateEpoch(dir string) (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	out, err := gitOutput(dir, "log", "-1", "--format=%ct")
	if err != nil || out == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("git commit time %q: %w", out, err)
	}
	return time.Unix(n, 0).UTC(), nil
}

// Revision is the commit checked out at dir, "unknown" without git.
func Revision(dir string) string {
	out, err := gitOutput(dir, "rev-parse", "HEAD")
	if err != nil || out == "" {
		return "unknown"
	}
	return out
}

// ModuleSource is the source URL derived from the main module's path (the
// module path names the repository).
func ModuleSource(dir string) string {
	cmd := exec.Command(GoCommand(), "list", "-m")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return "https://" + strings.TrimSpace(string(out))
}

func gitOutput(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}
