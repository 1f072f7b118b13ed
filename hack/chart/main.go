// Command chart packages the Helm chart deploy/helm/bgplb with Helm's Go
// module (no helm binary), as make chart does: OUT/bgplb-chart-TAG.tgz, its
// appVersion the image tag `make image` gives the same version, so that the
// packaged chart deploys that image. Reproducible: the files' times are
// $SOURCE_DATE_EPOCH, else the commit's.
//
//	go run ./hack/chart -version $(git describe --always --dirty)
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"
	"helm.sh/helm/v4/pkg/action"

	"github.com/bgplb/bgplb/internal/image"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
}

func run() error {
	version := flag.String("version", "dev", "the release's version (git describe)")
	chartDir := flag.String("chart", "deploy/helm/bgplb", "the chart's directory")
	out := flag.String("out", "bin", "output directory")
	flag.Parse()

	dir, err := os.Getwd()
	if err != nil {
		return err
	}
	created, err := image.SourceDateEpoch(dir)
	if err != nil {
		return err
	}
	chartVersion, err := semverOf(*version)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "bgplb-chart")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	p := action.NewPackage()
	p.Destination = tmp
	p.Version = chartVersion
	p.AppVersion = image.Tag(*version)
	p.SourceDateEpoch = &created
	built, err := p.Run(*chartDir, nil)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	dst := filepath.Join(*out, "bgplb-chart-"+image.Tag(*version)+".tgz")
	b, err := os.ReadFile(built)
	if err != nil {
		return err
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		return err
	}
	fmt.Printf("%s: chart %s, image tag %s\n", dst, chartVersion, p.AppVersion)
	return nil
}

var notPrerelease = regexp.MustCompile(`[^0-9A-Za-z.-]+`)

// semverOf is the chart version for a release's version: itself without
// the "v" when it is SemVer (git describe of a tag: v1.2.3, v1.2.3-4-gabc),
// else 0.0.0 with it as pre-release (an untagged commit: 0.0.0-g756b43d).
func semverOf(version string) (string, error) {
	if v, err := semver.StrictNewVersion(strings.TrimPrefix(version, "v")); err == nil {
		return v.String(), nil
	}
	pre := strings.Trim(notPrerelease.ReplaceAllString(version, "-"), ".-")
	if pre != "" && pre[0] >= '0' && pre[0] <= '9' {
		pre = "g" + pre // a numeric identifier may not start with 0
	}
	v, err := semver.StrictNewVersion("0.0.0-" + pre)
	if err != nil {
		return "", fmt.Errorf("no chart version for %q: %w", version, err)
	}
	return v.String(), nil
}
