package kubetest

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/bgplb/bgplb/internal/controlplane"
)

func TestNamespacePrefix(t *testing.T) {
	tests := []struct{ in, want string }{
		{"TestServices", "testservices-"},
		{"TestX/sub_case#01", "testx-sub-case-01-"},
		{"123", "t-123-"},
		{"---", "t-"},
		{"", "t-"},
		{strings.Repeat("a", 50), strings.Repeat("a", 40) + "-"},
		{strings.Repeat("a", 39) + "/b", strings.Repeat("a", 39) + "-"}, // no double dash at the cut
	}
	valid := regexp.MustCompile(`^[a-z]([a-z0-9-]*[a-z0-9])?-$`)
	for _, tt := range tests {
		got := namespacePrefix(tt.in)
		if got != tt.want {
			t.Errorf("namespacePrefix(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if !valid.MatchString(got) || len(got)+5 > 63 {
			t.Errorf("namespacePrefix(%q) = %q cannot start a namespace name", tt.in, got)
		}
	}
}

type fakeTB struct {
	testing.TB
	ended string
}

type stopTest struct{}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.ended = "skip: " + fmt.Sprintf(format, args...)
	panic(stopTest{})
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.ended = "fail: " + fmt.Sprintf(format, args...)
	panic(stopTest{})
}

func endOf(err error) string {
	f := &fakeTB{}
	func() {
		defer func() {
			if r := recover(); r != nil && r != (stopTest{}) {
				panic(r)
			}
		}()
		SkipOrFail(f, err)
	}()
	return f.ended
}

func TestSkipOrFail(t *testing.T) {
	missing := fmt.Errorf("%w; looked in /x", controlplane.ErrNoBinaries)
	other := fmt.Errorf("controlplane: etcd exited early")
	t.Setenv("CI", "")
	if got := endOf(missing); !strings.HasPrefix(got, "skip: ") {
		t.Errorf("missing binaries outside CI: %q, want a skip", got)
	}
	if got := endOf(other); !strings.HasPrefix(got, "fail: ") {
		t.Errorf("other error outside CI: %q, want a failure", got)
	}
	t.Setenv("CI", "true")
	if got := endOf(missing); !strings.HasPrefix(got, "fail: ") || !strings.Contains(got, "hack/k8sbin.sh") {
		t.Errorf("missing binaries in CI: %q, want a failure naming hack/k8sbin.sh", got)
	}
}
