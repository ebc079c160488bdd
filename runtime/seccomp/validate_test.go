package seccomp

import (
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func ptr[T any](v T) *T { return &v }

// validProfile is a small profile using every feature, valid everywhere.
func validProfile() *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: ptr(uint(38)),
		Architectures:   []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchAARCH64, specs.ArchARM},
		Flags:           []specs.LinuxSeccompFlag{flagTsync, specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv},
		ListenerPath:    "/run/agent.sock",
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write", "exit_group"}, Action: specs.ActAllow},
			{Names: []string{"mkdirat"}, Action: specs.ActErrno, ErrnoRet: ptr(uint(1))},
			{Names: []string{"ptrace"}, Action: specs.ActTrace, ErrnoRet: ptr(uint(7))},
			{Names: []string{"kexec_load"}, Action: specs.ActKill},
			{Names: []string{"reboot"}, Action: specs.ActKillProcess},
			{Names: []string{"swapon"}, Action: specs.ActKillThread},
			{Names: []string{"acct"}, Action: specs.ActTrap},
			{Names: []string{"uname"}, Action: specs.ActLog},
			{Names: []string{"getppid"}, Action: specs.ActNotify},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Op: specs.OpEqualTo, Value: 0xffffffff},
			}},
			{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Op: specs.OpMaskedEqual, Value: 0x7e020000, ValueTwo: 0},
			}},
			{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Op: specs.OpNotEqual, Value: 16},
				{Index: 1, Op: specs.OpLessThan, Value: 7},
				{Index: 2, Op: specs.OpLessEqual, Value: 7},
				{Index: 3, Op: specs.OpGreaterThan, Value: 7},
				{Index: 4, Op: specs.OpGreaterEqual, Value: 7},
				{Index: 5, Op: specs.OpEqualTo, Value: 7},
			}},
			{Names: []string{"no_such_syscall_in_any_kernel"}, Action: specs.ActAllow},
		},
	}
}

func TestValidateAcceptsEveryActionArchFlagAndOperator(t *testing.T) {
	if err := Validate(validProfile()); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestValidateAcceptsNil(t *testing.T) {
	if err := Validate(nil); err != nil {
		t.Fatalf("Validate(nil): %v", err)
	}
}

func TestValidateRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(c *specs.LinuxSeccomp)
		want   string
	}{
		{"missing default action", func(c *specs.LinuxSeccomp) { c.DefaultAction = "" },
			`linux.seccomp.defaultAction: must be set`},
		{"unknown default action", func(c *specs.LinuxSeccomp) { c.DefaultAction = "SCMP_ACT_FOO" },
			`linux.seccomp.defaultAction: unknown action "SCMP_ACT_FOO"`},
		{"notify as default action", func(c *specs.LinuxSeccomp) { c.DefaultAction = specs.ActNotify },
			`linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action`},
		{"defaultErrnoRet with allow", func(c *specs.LinuxSeccomp) { c.DefaultAction = specs.ActAllow },
			`linux.seccomp.defaultErrnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_ALLOW`},
		{"defaultErrnoRet out of range", func(c *specs.LinuxSeccomp) { c.DefaultErrnoRet = ptr(uint(70000)) },
			`linux.seccomp.defaultErrnoRet: 70000 is out of range (0-65535)`},
		{"unknown syscall action", func(c *specs.LinuxSeccomp) { c.Syscalls[3].Action = "SCMP_ACT_FOO" },
			`linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_FOO"`},
		{"missing syscall action", func(c *specs.LinuxSeccomp) { c.Syscalls[0].Action = "" },
			`linux.seccomp.syscalls[0].action: must be set`},
		{"errnoRet with kill", func(c *specs.LinuxSeccomp) { c.Syscalls[3].ErrnoRet = ptr(uint(1)) },
			`linux.seccomp.syscalls[3].errnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_KILL`},
		{"errnoRet out of range", func(c *specs.LinuxSeccomp) { c.Syscalls[1].ErrnoRet = ptr(uint(65536)) },
			`linux.seccomp.syscalls[1].errnoRet: 65536 is out of range (0-65535)`},
		{"empty syscall name", func(c *specs.LinuxSeccomp) { c.Syscalls[0].Names[1] = "" },
			`linux.seccomp.syscalls[0].names[1]: empty syscall name`},
		{"unknown architecture", func(c *specs.LinuxSeccomp) { c.Architectures[1] = "SCMP_ARCH_PDP11" },
			`linux.seccomp.architectures[1]: unknown architecture "SCMP_ARCH_PDP11"`},
		{"unknown flag", func(c *specs.LinuxSeccomp) { c.Flags[1] = "SECCOMP_FILTER_FLAG_FOO" },
			`linux.seccomp.flags[1]: unknown flag "SECCOMP_FILTER_FLAG_FOO"`},
		{"unknown operator", func(c *specs.LinuxSeccomp) { c.Syscalls[11].Args[2].Op = "SCMP_CMP_FOO" },
			`linux.seccomp.syscalls[11].args[2].op: unknown operator "SCMP_CMP_FOO"`},
		{"missing operator", func(c *specs.LinuxSeccomp) { c.Syscalls[11].Args[0].Op = "" },
			`linux.seccomp.syscalls[11].args[0].op: must be set`},
		{"argument index above 5", func(c *specs.LinuxSeccomp) { c.Syscalls[9].Args[0].Index = 6 },
			`linux.seccomp.syscalls[9].args[0].index: 6 is out of range (syscalls have arguments 0-5)`},
		{"notify without listenerPath", func(c *specs.LinuxSeccomp) { c.ListenerPath = "" },
			`linux.seccomp.listenerPath: required when a syscall uses SCMP_ACT_NOTIFY`},
		{"listenerPath without notify", func(c *specs.LinuxSeccomp) {
			c.Syscalls[8].Action = specs.ActAllow
			c.Flags = c.Flags[:3]
		}, `linux.seccomp.listenerPath: set, but no syscall uses SCMP_ACT_NOTIFY`},
		{"wait killable recv without notify", func(c *specs.LinuxSeccomp) {
			c.Syscalls[8].Action = specs.ActAllow
			c.ListenerPath = ""
		}, `linux.seccomp.flags[3]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs a syscall with action SCMP_ACT_NOTIFY`},
		{"notify on write", func(c *specs.LinuxSeccomp) { c.Syscalls[8].Names = []string{"getppid", "write"} },
			`linux.seccomp.syscalls[8].names[1]: SCMP_ACT_NOTIFY cannot be used for write`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validProfile()
			tc.change(c)
			err := Validate(c)
			if err == nil {
				t.Fatalf("Validate: no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %q, want it to contain %q", err, tc.want)
			}
			if _, cerr := Compile(c); cerr == nil {
				t.Fatalf("Compile accepted a profile Validate rejects")
			}
		})
	}
}

func TestValidateReportsEveryProblemAtOnce(t *testing.T) {
	c := validProfile()
	c.DefaultAction = "SCMP_ACT_FOO"
	c.Architectures[0] = "SCMP_ARCH_FOO"
	c.Syscalls[2].Args = []specs.LinuxSeccompArg{{Index: 9, Op: specs.OpEqualTo}}
	err := Validate(c)
	if err == nil {
		t.Fatal("Validate: no error")
	}
	for _, want := range []string{"defaultAction", "architectures[0]", "syscalls[2].args[0].index"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestValidateIgnoresSyscallsUnknownToLibseccomp(t *testing.T) {
	c := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"frobnicate_2031"}, Action: specs.ActErrno}},
	}
	if err := Validate(c); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	p, err := Compile(c)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if p.Len() == 0 {
		t.Fatal("Compile: empty program")
	}
}
