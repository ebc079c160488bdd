package seccomp

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestSupportedFlagsProbesTheKernel(t *testing.T) {
	got := SupportedFlags()
	// Every flag has been in Linux since 6.0; this host runs 6.18.
	for _, f := range []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv} {
		if !slices.Contains(got, string(f)) {
			t.Errorf("SupportedFlags() = %v, missing %s", got, f)
		}
	}
	if v := LibraryVersion(); v == "0.0.0" || v == "" {
		t.Errorf("LibraryVersion() = %q", v)
	}
}
