package specgen

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opencontainers/runtime-spec/specs-go"

	rtspec "github.com/hull-runtime/hull/runtime/spec"
)

// Generated specs pass the runtime's validator (the checks hull-runtime
// makes before create) on the real host, survive a JSON round trip, and
// keep their key Docker defaults — for a plain run and for option sets
// that touch every part of the spec.
func TestGeneratedSpecValidates(t *testing.T) {
	rootfs := stdRootfs(t)
	adj := 100
	hostFile := filepath.Join(t.TempDir(), "f")
	must(t, os.WriteFile(hostFile, []byte("x"), 0o644))
	img := ocispec.Image{Config: ocispec.ImageConfig{
		Entrypoint: []string{"/docker-entrypoint.sh"},
		Cmd:        []string{"nginx", "-g", "daemon off;"},
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin", "NGINX_VERSION=1.27"},
		WorkingDir: "/srv",
		User:       "app",
		StopSignal: "SIGQUIT",
		Volumes:    map[string]struct{}{"/var/cache/nginx": {}},
		Labels:     map[string]string{"maintainer": "x"},
	}}
	cases := map[string]Options{
		"plain": {ID: "0123456789abcdef0123"},
		"everything": {
			ID: "0123456789abcdef0123", Hostname: "web", Domainname: "example.org",
			Env: []string{"A=1"}, User: "1000:50", Workdir: "/tmp", TTY: true, Interactive: true,
			ReadOnly: true, Init: true, InitPath: "/usr/bin/tini",
			CapAdd: []string{"NET_ADMIN"}, CapDrop: []string{"MKNOD"},
			SecurityOpt: []string{"no-new-privileges", "label=disable"},
			Memory:      256 << 20, MemorySwap: 512 << 20, MemoryReservation: 128 << 20,
			CPUs: 0.5, CPUShares: 512, CPUSetCPUs: "0", PidsLimit: 100,
			Ulimits: []string{"nofile=1024:4096", "nproc=512"},
			Devices: []string{"/dev/null:/dev/xnull:rw"},
			Tmpfs:   []string{"/run:size=64m"},
			Mounts: []Mount{
				{Source: t.TempDir(), Destination: "/data", Options: []string{"z"}},
				{Destination: "/scratch", Type: "tmpfs"},
			},
			ShmSize:     128 << 20,
			Sysctls:     map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "65536"},
			Annotations: map[string]string{"io.hull.test": "1"},
			StopSignal:  "TERM", NetNSPath: newNetNS(t), IPCNSPath: "/proc/self/ns/ipc", ShmPath: t.TempDir(),
			ResolvConf: hostFile, HostsFile: hostFile, HostnameFile: hostFile,
			CgroupsPath: "/hull/0123", OOMScoreAdj: &adj, GroupAdd: []string{"staff"},
		},
		"host namespaces": {ID: "abc", NetNSPath: "host", UTSHost: true, IPCHost: true, PIDHost: true},
		"privileged":      {ID: "abc", Privileged: true},
		"unconfined":      {ID: "abc", SecurityOpt: []string{"seccomp=unconfined", "systempaths=unconfined"}, CapDrop: []string{"ALL"}},
	}
	for name, o := range cases {
		t.Run(name, func(t *testing.T) {
			if o.Privileged {
				o.Host = nil // the real host's /dev
			}
			s, err := gen(t, img, rootfs, o)
			if err != nil {
				t.Fatal(err)
			}
			if err := rtspec.Validate(s, filepath.Dir(rootfs)); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			data, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			var back specs.Spec
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatal(err)
			}
			if err := rtspec.Validate(&back, filepath.Dir(rootfs)); err != nil {
				t.Fatalf("Validate after a JSON round trip: %v", err)
			}
			if back.Version != SpecVersion || back.Root.Path != rootfs || back.Process.Cwd == "" || len(back.Process.Args) == 0 {
				t.Errorf("spec lost its basics: %+v", back)
			}
		})
	}

	// Spot-check the plain run against what `docker run` gives.
	s := mustGen(t, img, rootfs, cases["plain"])
	if want := []string{"/docker-entrypoint.sh", "nginx", "-g", "daemon off;"}; !slices.Equal(s.Process.Args, want) {
		t.Errorf("args = %q", s.Process.Args)
	}
	if s.Process.User.UID != 1000 || s.Process.Cwd != "/srv" || s.Hostname != "0123456789ab" {
		t.Errorf("user %+v cwd %q hostname %q", s.Process.User, s.Process.Cwd, s.Hostname)
	}
	if s.Annotations[AnnotationStopSignal] != "SIGQUIT" || s.Annotations["maintainer"] != "" {
		t.Errorf("annotations = %v", s.Annotations)
	}
	if want := []string{"HOSTNAME=0123456789ab", "PATH=/usr/local/bin:/usr/bin:/bin", "NGINX_VERSION=1.27", "HOME=/home/app"}; !slices.Equal(s.Process.Env, want) {
		t.Errorf("env = %q", s.Process.Env)
	}
}

// With no Host given, Generate probes the machine and still produces a
// valid spec; the probe's nofile default never exceeds the hard limit.
func TestGenerateProbesHost(t *testing.T) {
	rootfs := stdRootfs(t)
	s, err := Generate(testImage(), rootfs, Options{ID: "abc"})
	if err != nil {
		t.Fatal(err)
	}
	if err := rtspec.Validate(s, filepath.Dir(rootfs)); err != nil {
		t.Fatal(err)
	}
	h, err := ProbeHost()
	if err != nil {
		t.Fatal(err)
	}
	for _, rl := range s.Process.Rlimits {
		if rl.Type == "RLIMIT_NOFILE" && !h.CanRaiseRlimits && rl.Hard > h.RlimitHard["RLIMIT_NOFILE"] {
			t.Errorf("default nofile hard %d above the host's %d", rl.Hard, h.RlimitHard["RLIMIT_NOFILE"])
		}
	}
	if _, err := Generate(testImage(), "relative/rootfs", Options{}); err == nil {
		t.Error("relative rootfs accepted")
	}
}
