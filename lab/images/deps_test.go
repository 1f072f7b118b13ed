package images

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/bgplb/bgplb/internal/image"
)

// TestSmallImagesLinkNoKubernetes: the pause and Pi-hole binaries stay
// small; neither may pull in client-go (or anything of Kubernetes) through
// lab/dnsserver or a helper.
func TestSmallImagesLinkNoKubernetes(t *testing.T) {
	for _, name := range []string{Pause, Pihole} {
		spec, _ := SpecFor(name)
		cmd := exec.Command(image.GoCommand(), "list", "-deps", "-f", "{{.ImportPath}}", spec.Package)
		cmd.Dir = "../.."
		cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %s: %v", spec.Package, err)
		}
		for _, p := range strings.Fields(string(out)) {
			if strings.HasPrefix(p, "k8s.io/") || strings.HasPrefix(p, "sigs.k8s.io/") {
				t.Errorf("%s imports %s", spec.Package, p)
			}
		}
	}
}
