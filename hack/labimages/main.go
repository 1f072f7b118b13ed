// Command labimages builds, or finds cached, the lab's in-tree images
// (lab/images.Ensure): the pause, Pi-hole and bgplb images for this host's
// architecture, as OCI archives for `ctr -n k8s.io images import`. It
// prints one line an image: name, reference, archive, digest.
//
//	go run ./hack/labimages -version $(git describe --always --dirty)
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/bgplb/bgplb/lab/images"
)

func main() {
	version := flag.String("version", "dev", "the version baked into bgplb and the tags")
	only := flag.String("images", strings.Join(images.All(), ","), "the images to build")
	cache := flag.String("cache", "", "the cache directory (default: $BGPLB_CACHE/images or ~/.cache/bgplb/images)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	set, err := images.Ensure(ctx, images.Options{
		Version:  *version,
		CacheDir: *cache,
		Images:   strings.Split(*only, ","),
		Log:      slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "labimages:", err)
		os.Exit(1)
	}
	for _, name := range strings.Split(*only, ",") {
		img := set[name]
		fmt.Println(img.Name, img.Ref, img.Archive, img.Digest)
	}
}
