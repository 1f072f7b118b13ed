package kubetest

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// LockPort holds an exclusive lock on the TCP port's name until the test
// ends, then checks the port is free: a stale listener would answer a
// probe. Tests that run bgplb on the manifests' fixed ports take it, since
// go test -p 2 runs packages at once. Register it before starting the
// process so that the lock outlives it.
func LockPort(t testing.TB, port string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "bgplb-test-port-"+port+".lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		t.Fatalf("port %s busy: %v", port, err)
	}
	ln.Close()
}
