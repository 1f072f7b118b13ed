package main

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"version"})
	if err := root.Execute(); err != nil {
		t.Fatalf("bgplb version: %v", err)
	}
	got := out.String()
	if !strings.HasPrefix(got, "bgplb ") {
		t.Errorf("output %q does not start with %q", got, "bgplb ")
	}
	if !strings.Contains(got, runtime.Version()) {
		t.Errorf("output %q does not contain %q", got, runtime.Version())
	}
	if want := runtime.GOOS + "/" + runtime.GOARCH; !strings.Contains(got, want) {
		t.Errorf("output %q does not contain %q", got, want)
	}
}

func TestVersionRejectsArgs(t *testing.T) {
	var out bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"version", "extra"})
	if err := root.Execute(); err == nil {
		t.Fatalf("bgplb version extra: want an error, got output %q", out.String())
	}
}

func TestUnknownCommandFails(t *testing.T) {
	var out bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"no-such-role"})
	if err := root.Execute(); err == nil {
		t.Fatalf("bgplb no-such-role: want an error, got output %q", out.String())
	}
}
