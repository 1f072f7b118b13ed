package controlplane

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A control plane whose kube-apiserver dies says so: Done closes and Err
// names the process, so `bgplb lab control-plane` ends with it rather than
// serving nothing.
func TestDoneWhenAProcessDies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Run(ctx, Options{})
	if errors.Is(err, ErrNoBinaries) && os.Getenv("CI") == "" {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	if err := s.Err(); err != nil {
		t.Fatalf("Err while running: %v", err)
	}
	select {
	case <-s.Done():
		t.Fatal("Done while running")
	default:
	}
	if err := s.procs[1].Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-ctx.Done():
		t.Fatal("Done not closed after kube-apiserver died")
	}
	if err := s.Err(); err == nil || !strings.Contains(err.Error(), "kube-apiserver exited") {
		t.Errorf("Err = %v, want kube-apiserver exited", err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("Stop after a death: %v", err)
	}
	if _, err := os.Stat(s.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after Stop: %v", s.Dir, err)
	}
}
