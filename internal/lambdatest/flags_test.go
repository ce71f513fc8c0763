package lambdatest

import (
	"slices"
	"strings"
	"testing"
)

// TestBuildFlags: the Makefile's GOFLAGS_FN comes out as go build's arguments, the quoted
// -ldflags as one word, and both build tags there.
func TestBuildFlags(t *testing.T) {
	t.Parallel()
	flags := BuildFlags(t)
	i := slices.Index(flags, "-tags")
	if i < 0 || i+1 >= len(flags) {
		t.Fatalf("BuildFlags = %q: no -tags", flags)
	}
	tags := strings.Split(flags[i+1], ",")
	for _, want := range []string{"lambda.norpc", "nethttpomithttp2"} {
		if !slices.Contains(tags, want) {
			t.Errorf("BuildFlags = %q: tag %s missing", flags, want)
		}
	}
	if !slices.Contains(flags, "-trimpath") || !slices.Contains(flags, "-ldflags=-s -w") {
		t.Errorf("BuildFlags = %q, want -trimpath and -ldflags=-s -w", flags)
	}
}

// TestTargetEnv: the Makefile's GOENV_FN is the Lambda target, as environment entries.
func TestTargetEnv(t *testing.T) {
	t.Parallel()
	env := TargetEnv(t)
	for _, want := range []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64", "GOARM64=v8.1"} {
		if !slices.Contains(env, want) {
			t.Errorf("TargetEnv = %q: %s missing", env, want)
		}
	}
}

func TestSplitWords(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][]string{
		"":                            nil,
		"  -a   -b\t-c ":              {"-a", "-b", "-c"},
		"-ldflags='-s -w' -x":         {"-ldflags=-s -w", "-x"},
		"'' a":                        {"", "a"},
		"'-gcflags=all=-N -l'":        {"-gcflags=all=-N -l"},
		"-tags a,b -ldflags='-X m.v'": {"-tags", "a,b", "-ldflags=-X m.v"},
	} {
		got, err := splitWords(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`-ldflags="-s -w"`, `-x\ y`, `-tags $(TAGS)`, `'open`} {
		if got, err := splitWords(bad); err == nil {
			t.Errorf("splitWords(%q) = %q, want an error", bad, got)
		}
	}
}
