// Command image builds bgplb's container image without a container engine
// (make image): the multi-arch OCI index as an OCI layout in OUT/oci, the
// same layout as an oci-archive OUT/bgplb-oci.tar (podman load, ctr images
// import), and the host architecture's image as a docker save tarball
// OUT/bgplb-ARCH.tar (docker load, podman load). It prints the index digest.
//
//	go run ./hack/image -version $(git describe --always --dirty)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/bgplb/bgplb/internal/image"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run() error {
	version := flag.String("version", "dev", "the version baked into the binary and the labels")
	revision := flag.String("revision", "", "the commit (default: git rev-parse HEAD)")
	source := flag.String("source", "", "the source URL label (default: from the module path)")
	out := flag.String("out", "bin/image", "output directory")
	archs := flag.String("archs", strings.Join(image.DefaultArchs, ","), "GOARCH list")
	flag.Parse()

	dir, err := os.Getwd()
	if err != nil {
		return err
	}
	created, err := image.SourceDateEpoch(dir)
	if err != nil {
		return err
	}
	meta := image.Meta{Version: *version, Revision: *revision, Source: *source, Created: created}
	if meta.Revision == "" {
		meta.Revision = image.Revision(dir)
	}
	if meta.Source == "" {
		meta.Source = image.ModuleSource(dir)
	}
	work := filepath.Join(*out, "build")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	list := strings.Split(*archs, ",")
	idx, err := image.Build(context.Background(), dir, work, list, meta)
	if err != nil {
		return err
	}
	ref := image.RefFor(*version)
	layoutDir := filepath.Join(*out, "oci")
	if err := image.WriteLayout(layoutDir, idx, ref); err != nil {
		return err
	}
	if err := image.WriteOCIArchive(layoutDir, filepath.Join(*out, "bgplb-oci.tar"), created); err != nil {
		return err
	}
	host := runtime.GOARCH
	docker := filepath.Join(*out, "bgplb-"+host+".tar")
	if slices.Contains(list, host) {
		if err := image.WriteDockerTarball(docker, idx, host, ref); err != nil {
			return err
		}
	} else if err := os.Remove(docker); err != nil && !os.IsNotExist(err) {
		// A tarball of an earlier build would pass for this one.
		return err
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s %s (%s) in %s\n", ref, digest, strings.Join(list, ","), *out)
	return nil
}
