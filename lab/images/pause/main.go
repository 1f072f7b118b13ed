// Command pause is a pod sandbox's first process, as the Kubernetes pause
// image's is: it holds the pod's namespaces open, reaps the orphans that
// are re-parented to it (it is pid 1 of the pod's PID namespace when the
// pod shares one), and exits 0 on SIGTERM or SIGINT. It does nothing else,
// and links nothing but the runtime and the syscall package, so the image
// stays small.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every exited child: signals coalesce, so one SIGCHLD may
// stand for several.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
