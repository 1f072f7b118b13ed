package home

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

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
	return dir, checkSourceDir(dir)
}

func checkSourceDir(dir string) error {
	var errs []error
	for _, p := range []string{"deploy/examples/pihole.yaml", "config/crd/bases", "config/rbac/speaker/role.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
