package home

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bgplb/bgplb/config"
	"github.com/bgplb/bgplb/deploy"
)

// manifestsDir is where Up writes the binary's own manifests, under StateDir.
const manifestsDir = "manifests"

// sourceDir returns the tree Up reads deploy/examples and config/ from:
// --source when given, otherwise the manifests built into this binary,
// written under the state directory (Down removes them with it).
func sourceDir(o Options) (string, error) {
	if o.SourceDir != "" {
		if err := checkSourceDir(o.SourceDir); err != nil {
			return "", fmt.Errorf("--source %s is not a bgplb source tree: %w", o.SourceDir, err)
		}
		return o.SourceDir, nil
	}
	dir := filepath.Join(o.StateDir, manifestsDir)
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.CopyFS(filepath.Join(dir, "config"), config.FS); err != nil {
		return "", fmt.Errorf("writing the built-in manifests: %w", err)
	}
	if err := os.CopyFS(filepath.Join(dir, "deploy"), deploy.Examples); err != nil {
		return "", fmt.Errorf("writing the built-in examples: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "deploy", bundleFile), deploy.Bundle, 0o644); err != nil {
		return "", fmt.Errorf("writing the built-in install bundle: %w", err)
	}
	return dir, checkSourceDir(dir)
}

func checkSourceDir(dir string) error {
	var errs []error
	for _, p := range []string{"deploy/examples/pihole.yaml", "config/crd/bases", "config/rbac/speaker/role.yaml", "deploy/" + bundleFile} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// bundleFile is the install bundle, under deploy/.
const bundleFile = "bgplb.yaml"

// bundleImage is the image the bundle names; `make image` builds it under
// a versioned tag, which a user substitutes (docs/install.md).
const bundleImage = "bgplb:VERSION"

// withImage returns the bundle with its image replaced by ref, never
// pulled: the lab's nodes hold the images imported into their containerd
// and reach no registry. Every container line must match, or the lab would
// install something other than what users install.
func withImage(bundle []byte, ref string) ([]byte, error) {
	lines := strings.SplitAfter(string(bundle), "\n")
	var out strings.Builder
	n := 0
	for _, l := range lines {
		body := strings.TrimRight(l, "\n")
		trimmed := strings.TrimLeft(body, " ")
		if strings.HasPrefix(trimmed, "image:") {
			if strings.TrimSpace(strings.TrimPrefix(trimmed, "image:")) != bundleImage {
				return nil, fmt.Errorf("install bundle: unexpected %q (want image: %s)", trimmed, bundleImage)
			}
			indent := body[:len(body)-len(trimmed)]
			fmt.Fprintf(&out, "%simage: %s\n%simagePullPolicy: Never\n", indent, ref, indent)
			n++
			continue
		}
		if strings.HasPrefix(trimmed, "imagePullPolicy:") {
			return nil, fmt.Errorf("install bundle: it sets %q already", trimmed)
		}
		out.WriteString(l)
	}
	if n == 0 {
		return nil, fmt.Errorf("install bundle: no image: %s", bundleImage)
	}
	return []byte(out.String()), nil
}

// treeAt is dir made absolute if it is a bgplb source tree (one the real
// cluster can build its images from), else "".
func treeAt(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil || checkSourceDir(abs) != nil {
		return ""
	}
	if _, err := os.Stat(filepath.Join(abs, "lab", "images", "pause")); err != nil {
		return ""
	}
	return abs
}
