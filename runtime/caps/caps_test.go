package caps

import (
	"errors"
	"strings"
	"testing"

	"github.com/moby/sys/capability"
	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestParseAcceptsEveryKnownCapability(t *testing.T) {
	var names []string
	for _, c := range capability.ListKnown() {
		names = append(names, capName(c))
	}
	caps, unknown := parse(names, capability.ListKnown()[len(names)-1])
	if unknown != nil {
		t.Fatalf("parse: %v", unknown)
	}
	if len(caps) != len(names) {
		t.Fatalf("parse returned %d capabilities for %d names", len(caps), len(names))
	}
	for i, c := range caps {
		if capName(c) != names[i] {
			t.Errorf("%s parsed as %s", names[i], capName(c))
		}
	}
}

func TestParseRejectsNamesThatAreNoCapability(t *testing.T) {
	for _, name := range []string{"CAP_FOO", "cap_chown", "CAP_chown", "CHOWN", "CAP_", "", " CAP_CHOWN"} {
		_, err := Parse([]string{"CAP_KILL", name})
		if err == nil {
			t.Errorf("Parse(%q): no error", name)
			continue
		}
		var ue *UnknownError
		if !errors.As(err, &ue) || ue.Name != name {
			t.Errorf("Parse(%q): %v, want an *UnknownError naming it", name, err)
		}
		if want := `unknown capability "` + name + `"`; !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q): %q, want it to contain %q", name, err, want)
		}
	}
}

func TestParseReportsEveryUnknownName(t *testing.T) {
	_, err := Parse([]string{"CAP_FOO", "CAP_CHOWN", "CAP_BAR"})
	if err == nil || !strings.Contains(err.Error(), "CAP_FOO") || !strings.Contains(err.Error(), "CAP_BAR") {
		t.Fatalf("Parse: %v, want both CAP_FOO and CAP_BAR named", err)
	}
}

func TestParseIgnoresCapabilitiesAboveTheKernelsLast(t *testing.T) {
	// As on a kernel before 5.8 (no CAP_PERFMON, CAP_BPF, CAP_CHECKPOINT_RESTORE).
	caps, unknown := parse([]string{"CAP_CHOWN", "CAP_BPF", "CAP_CHECKPOINT_RESTORE", "CAP_AUDIT_READ"}, capability.CAP_AUDIT_READ)
	if unknown != nil {
		t.Fatalf("parse: %v", unknown)
	}
	if len(caps) != 2 || caps[0] != capability.CAP_CHOWN || caps[1] != capability.CAP_AUDIT_READ {
		t.Fatalf("parse = %v, want [CAP_CHOWN CAP_AUDIT_READ]", caps)
	}
}

func TestKnown(t *testing.T) {
	for name, want := range map[string]bool{
		"CAP_SYS_ADMIN": true,
		"CAP_CHOWN":     true,
		"CAP_FOO":       false,
		"cap_sys_admin": false,
	} {
		if got := Known(name); got != want {
			t.Errorf("Known(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestFromSpecNamesTheFieldOfAnUnknownCapability(t *testing.T) {
	for _, field := range []string{"bounding", "effective", "permitted", "inheritable", "ambient"} {
		c := &specs.LinuxCapabilities{}
		bad := []string{"CAP_FOO"}
		switch field {
		case "bounding":
			c.Bounding = bad
		case "effective":
			c.Effective = bad
		case "permitted":
			c.Permitted = bad
		case "inheritable":
			c.Inheritable = bad
		case "ambient":
			c.Ambient = bad
		}
		_, err := FromSpec(c)
		want := `unknown capability "CAP_FOO" in process.capabilities.` + field
		if err == nil || err.Error() != want {
			t.Errorf("FromSpec: %v, want %q", err, want)
		}
		var ue *UnknownError
		if !errors.As(err, &ue) {
			t.Errorf("FromSpec: %v does not wrap *UnknownError", err)
		}
	}
}

func TestFromSpecRejectsEffectiveOutsidePermitted(t *testing.T) {
	_, err := FromSpec(&specs.LinuxCapabilities{
		Effective: []string{"CAP_CHOWN", "CAP_KILL"},
		Permitted: []string{"CAP_CHOWN"},
	})
	if err == nil || !strings.Contains(err.Error(), "process.capabilities.effective: CAP_KILL not in process.capabilities.permitted") {
		t.Fatalf("FromSpec: %v", err)
	}
}

func TestFromSpecDropsAmbientNotPermittedAndInheritable(t *testing.T) {
	s, err := fromSpec(&specs.LinuxCapabilities{
		Permitted:   []string{"CAP_CHOWN", "CAP_KILL"},
		Inheritable: []string{"CAP_CHOWN", "CAP_NET_RAW"},
		Ambient:     []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"},
	}, capability.CAP_CHECKPOINT_RESTORE)
	if err != nil {
		t.Fatal(err)
	}
	if s.ambient != maskOf([]capability.Cap{capability.CAP_CHOWN}) {
		t.Fatalf("ambient = %s, want CAP_CHOWN", s.ambient.names())
	}
}

func TestFromSpecKeepsInheritableEmptyUnlessListed(t *testing.T) {
	s, err := FromSpec(&specs.LinuxCapabilities{
		Bounding:  []string{"CAP_CHOWN"},
		Effective: []string{"CAP_CHOWN"},
		Permitted: []string{"CAP_CHOWN"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.inheritable != 0 || s.ambient != 0 {
		t.Fatalf("inheritable = %q, ambient = %q, want both empty", s.inheritable.names(), s.ambient.names())
	}
}

func TestNilSetLeavesCapabilitiesAlone(t *testing.T) {
	s, err := FromSpec(nil)
	if err != nil || s != nil {
		t.Fatalf("FromSpec(nil) = %v, %v; want nil, nil", s, err)
	}
	if err := s.ApplyBounding(); err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyRest(); err != nil {
		t.Fatal(err)
	}
}
