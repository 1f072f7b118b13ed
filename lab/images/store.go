package images

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/bgplb/bgplb/internal/image"
)

// writeArchive writes idx as an OCI archive at file: first below work, then
// renamed into place, so a reader never sees half an archive.
func writeArchive(work, file string, idx v1.ImageIndex, ref string, mtime time.Time) error {
	layout, err := os.MkdirTemp(work, "oci-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(layout)
	if err := image.WriteLayout(layout, idx, ref); err != nil {
		return err
	}
	tmp := layout + ".tar"
	if err := image.WriteOCIArchive(layout, tmp, mtime); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// writeAtomic writes a small file by rename.
func writeAtomic(file string, b []byte) error {
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// prune removes the archives of earlier builds of the same image, version
// and architecture (stem): a lab uses the newest, and every commit would
// otherwise leave one bgplb archive behind.
func prune(dir, stem, keep string, log *slog.Logger) {
	old, _ := filepath.Glob(filepath.Join(dir, stem+"-*.oci.tar"))
	for _, p := range old {
		if p == keep || strings.Count(strings.TrimPrefix(filepath.Base(p), stem+"-"), "-") != 0 {
			continue // the current one, or another version's whose tag extends this one's
		}
		if err := errors.Join(os.Remove(p), os.Remove(p+".digest")); err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Warn("pruning an old image archive", "archive", p, "err", err)
		}
	}
}

// lockPoll is how often a waiting Ensure tries the lock again.
const lockPoll = 100 * time.Millisecond

// lock takes an exclusive flock on file, waiting until it is free or ctx
// ends. The kernel drops the lock with the process, so a crashed build
// leaves none behind.
func lock(ctx context.Context, file string, log *slog.Logger) (unlock func(), err error) {
	f, err := os.OpenFile(file, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	waited := false
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		if !waited {
			log.Info("waiting for another build of the images", "lock", file)
			waited = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(lockPoll):
		}
	}
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
