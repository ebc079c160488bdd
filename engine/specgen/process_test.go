package specgen

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// Docker's environment: PATH default only without the image's, HOSTNAME,
// TERM=xterm with -t, the image's values, the user's overriding in place,
// HOME from passwd.
func TestEnvironment(t *testing.T) {
	rootfs := stdRootfs(t)
	tests := []struct {
		name     string
		imageEnv []string
		o        Options
		want     []string
	}{
		{
			name: "defaults",
			o:    Options{ID: "0123456789abcdef"},
			want: []string{"PATH=" + DefaultPath, "HOSTNAME=0123456789ab", "HOME=/root"},
		},
		{
			name:     "image PATH kept, no default",
			imageEnv: []string{"PATH=/opt/bin", "LANG=C.UTF-8"},
			o:        Options{Hostname: "web"},
			want:     []string{"HOSTNAME=web", "PATH=/opt/bin", "LANG=C.UTF-8", "HOME=/root"},
		},
		{
			name: "tty adds TERM",
			o:    Options{Hostname: "h", TTY: true},
			want: []string{"PATH=" + DefaultPath, "HOSTNAME=h", "TERM=xterm", "HOME=/root"},
		},
		{
			name:     "image TERM wins over the default",
			imageEnv: []string{"TERM=vt100"},
			o:        Options{Hostname: "h", TTY: true},
			want:     []string{"PATH=" + DefaultPath, "HOSTNAME=h", "TERM=vt100", "HOME=/root"},
		},
		{
			name:     "user overrides image in place, later user value wins",
			imageEnv: []string{"A=image", "B=image"},
			o:        Options{Hostname: "h", Env: []string{"A=user1", "C=new", "A=user2", "HOSTNAME=mine"}},
			want:     []string{"PATH=" + DefaultPath, "HOSTNAME=mine", "A=user2", "B=image", "C=new", "HOME=/root"},
		},
		{
			name: "user HOME wins over passwd",
			o:    Options{Hostname: "h", Env: []string{"HOME=/data"}},
			want: []string{"PATH=" + DefaultPath, "HOSTNAME=h", "HOME=/data"},
		},
		{
			name: "HOME from the user's passwd entry",
			o:    Options{Hostname: "h", User: "app"},
			want: []string{"PATH=" + DefaultPath, "HOSTNAME=h", "HOME=/home/app"},
		},
		{
			name: "HOME is / for a uid without a passwd entry",
			o:    Options{Hostname: "h", User: "4242"},
			want: []string{"PATH=" + DefaultPath, "HOSTNAME=h", "HOME=/"},
		},
		{
			name:     "malformed image entries are dropped",
			imageEnv: []string{"NOEQUALS", "=novalue", "OK=1"},
			o:        Options{Hostname: "h"},
			want:     []string{"PATH=" + DefaultPath, "HOSTNAME=h", "OK=1", "HOME=/root"},
		},
		{
			name: "host UTS takes the host's name",
			o:    Options{UTSHost: true},
			want: []string{"PATH=" + DefaultPath, "HOSTNAME=hosty", "HOME=/root"},
		},
		{
			name: "host network takes the host's name",
			o:    Options{ID: "0123456789abcdef", NetNSPath: "host"},
			want: []string{"PATH=" + DefaultPath, "HOSTNAME=hosty", "HOME=/root"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := testImage()
			img.Config.Env = tt.imageEnv
			s := mustGen(t, img, rootfs, tt.o)
			if !slices.Equal(s.Process.Env, tt.want) {
				t.Errorf("env = %q\nwant  %q", s.Process.Env, tt.want)
			}
		})
	}

	for _, bad := range []struct{ env, frag string }{
		{"FOO", "--env FOO: no value"},
		{"=x", "empty variable name"},
		{"A=\x00", "NUL"},
	} {
		_, err := gen(t, testImage(), rootfs, Options{Env: []string{bad.env}})
		wantErr(t, err, bad.frag)
	}
}

// Docker's entrypoint/cmd combination, and --init in front.
func TestCommand(t *testing.T) {
	rootfs := stdRootfs(t)
	img := func(ep, cmd []string) ocispec.Image {
		return ocispec.Image{Config: ocispec.ImageConfig{Entrypoint: ep, Cmd: cmd}}
	}
	tests := []struct {
		name string
		img  ocispec.Image
		o    Options
		want []string
		err  string
	}{
		{name: "image cmd", img: img(nil, []string{"sh", "-c", "true"}), want: []string{"sh", "-c", "true"}},
		{name: "image entrypoint + cmd", img: img([]string{"/entry"}, []string{"a", "b"}), want: []string{"/entry", "a", "b"}},
		{name: "user cmd replaces image cmd", img: img([]string{"/entry"}, []string{"a"}), o: Options{Cmd: []string{"x"}}, want: []string{"/entry", "x"}},
		{name: "empty non-nil cmd drops the image's", img: img([]string{"/entry"}, []string{"a"}), o: Options{Cmd: []string{}}, want: []string{"/entry"}},
		{name: "--entrypoint drops the image cmd", img: img([]string{"/entry"}, []string{"a"}), o: Options{Entrypoint: []string{"/bin/ls"}, EntrypointSet: true}, want: []string{"/bin/ls"}},
		{name: "--entrypoint with cmd", img: img([]string{"/entry"}, []string{"a"}), o: Options{Entrypoint: []string{"/bin/ls"}, EntrypointSet: true, Cmd: []string{"-l"}}, want: []string{"/bin/ls", "-l"}},
		{name: `--entrypoint "" with cmd`, img: img([]string{"/entry"}, []string{"a"}), o: Options{EntrypointSet: true, Cmd: []string{"/bin/true"}}, want: []string{"/bin/true"}},
		{name: `--entrypoint "" without cmd`, img: img([]string{"/entry"}, []string{"a"}), o: Options{EntrypointSet: true}, err: "no command specified"},
		{name: "nothing to run", img: img(nil, nil), err: "no command specified"},
		{name: "init", img: img(nil, []string{"-dash", "x"}), o: Options{Init: true, InitPath: "/usr/bin/tini"}, want: []string{InitDestination, "--", "-dash", "x"}},
		{name: "init without path", img: img(nil, []string{"x"}), o: Options{Init: true}, err: "--init"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := gen(t, tt.img, rootfs, tt.o)
			if tt.err != "" {
				wantErr(t, err, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(s.Process.Args, tt.want) {
				t.Errorf("args = %q, want %q", s.Process.Args, tt.want)
			}
		})
	}
	s := mustGen(t, img(nil, []string{"x"}), rootfs, Options{Init: true, InitPath: "/usr/bin/tini"})
	m := findMount(s, InitDestination)
	if m == nil || m.Source != "/usr/bin/tini" || !slices.Contains(m.Options, "ro") || &s.Mounts[len(s.Mounts)-1] != m {
		t.Errorf("init mount = %+v, want the last mount, a read-only bind of /usr/bin/tini", m)
	}
}

// User resolution against the rootfs's passwd and group, Docker's way.
func TestUser(t *testing.T) {
	rootfs := stdRootfs(t)
	tests := []struct {
		name      string
		imageUser string
		user      string
		groupAdd  []string
		uid, gid  uint32
		gids      []uint32
		err       []string
	}{
		{name: "default root gets root's groups", uid: 0, gid: 0, gids: []uint32{0, 10}},
		{name: "name", user: "app", uid: 1000, gid: 1000, gids: []uint32{10, 29}},
		{name: "image user", imageUser: "daemon", uid: 1, gid: 1},
		{name: "option beats image", imageUser: "daemon", user: "app", uid: 1000, gid: 1000, gids: []uint32{10, 29}},
		{name: "name:group has no supplementary groups", user: "app:staff", uid: 1000, gid: 50},
		{name: "uid in passwd", user: "1000", uid: 1000, gid: 1000, gids: []uint32{10, 29}},
		{name: "uid not in passwd", user: "4242", uid: 4242, gid: 0},
		{name: "uid:gid not in files", user: "4242:4343", uid: 4242, gid: 4343},
		{name: "name:gid", user: "app:77", uid: 1000, gid: 77},
		{name: "group-add by name and id", user: "4242", groupAdd: []string{"staff", "9999"}, uid: 4242, gids: []uint32{50, 9999}},
		{name: "unknown name", user: "nobody", err: []string{"--user", `"nobody"`, "/etc/passwd"}},
		{name: "unknown image user", imageUser: "ghost", err: []string{"image config User", `"ghost"`, "/etc/passwd"}},
		{name: "unknown group", user: "app:nogroup", err: []string{`"nogroup"`, "/etc/group"}},
		{name: "unknown group-add", groupAdd: []string{"nogroup"}, err: []string{"--group-add", "nogroup", "/etc/group"}},
		{name: "out of range", user: "99999999999", err: []string{"--user", "out of range"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := testImage()
			img.Config.User = tt.imageUser
			s, err := gen(t, img, rootfs, Options{User: tt.user, GroupAdd: tt.groupAdd})
			if tt.err != nil {
				wantErr(t, err, tt.err...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			u := s.Process.User
			if u.UID != tt.uid || u.GID != tt.gid || !slices.Equal(u.AdditionalGids, tt.gids) {
				t.Errorf("user = %d:%d %v, want %d:%d %v", u.UID, u.GID, u.AdditionalGids, tt.uid, tt.gid, tt.gids)
			}
		})
	}

	// No /etc/passwd at all: ids work, names fail saying the file is missing.
	empty := mkRootfs(t, nil)
	s := mustGen(t, testImage(), empty, Options{User: "5:6"})
	if s.Process.User.UID != 5 || s.Process.User.GID != 6 {
		t.Errorf("user = %+v, want 5:6", s.Process.User)
	}
	_, err := gen(t, testImage(), empty, Options{User: "app"})
	wantErr(t, err, `"app"`, "/etc/passwd", "does not exist")
}

// /etc/passwd is read as the container would see it: a symlink to a host
// path resolves inside the rootfs, never to the host file.
func TestPasswdSymlinkStaysInRootfs(t *testing.T) {
	host := t.TempDir()
	hostPasswd := filepath.Join(host, "passwd")
	if err := os.WriteFile(hostPasswd, []byte("hostonly:x:0:0::/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("absolute symlink to a host file", func(t *testing.T) {
		rootfs := mkRootfs(t, nil)
		if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(hostPasswd, filepath.Join(rootfs, "etc/passwd")); err != nil {
			t.Fatal(err)
		}
		_, err := gen(t, testImage(), rootfs, Options{User: "hostonly"})
		wantErr(t, err, `no user "hostonly"`)

		// The same path inside the rootfs is what counts.
		inRoot := filepath.Join(rootfs, hostPasswd)
		if err := os.MkdirAll(filepath.Dir(inRoot), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(inRoot, []byte("inroot:x:77:77::/in:/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		s := mustGen(t, testImage(), rootfs, Options{User: "inroot"})
		if s.Process.User.UID != 77 {
			t.Errorf("uid = %d, want 77 from the rootfs's copy", s.Process.User.UID)
		}
		if _, err := gen(t, testImage(), rootfs, Options{User: "hostonly"}); err == nil {
			t.Error("the host's passwd was read")
		}
	})

	t.Run("relative symlink climbing out", func(t *testing.T) {
		rootfs := mkRootfs(t, map[string]string{"etc/group": testGroup})
		rel, err := filepath.Rel(filepath.Join(rootfs, "etc"), hostPasswd)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(rel, filepath.Join(rootfs, "etc/passwd")); err != nil {
			t.Fatal(err)
		}
		_, err = gen(t, testImage(), rootfs, Options{User: "hostonly"})
		wantErr(t, err, `no user "hostonly"`)
	})

	t.Run("symlinked /etc directory", func(t *testing.T) {
		rootfs := mkRootfs(t, nil)
		if err := os.Symlink(host, filepath.Join(rootfs, "etc")); err != nil {
			t.Fatal(err)
		}
		_, err := gen(t, testImage(), rootfs, Options{User: "hostonly"})
		wantErr(t, err, `no user "hostonly"`)
	})

	t.Run("fifo is refused, not read", func(t *testing.T) {
		rootfs := mkRootfs(t, nil)
		if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mkfifo(filepath.Join(rootfs, "etc/passwd"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := gen(t, testImage(), rootfs, Options{User: "app"})
		wantErr(t, err, "not a regular file")
	})

	t.Run("device is refused", func(t *testing.T) {
		rootfs := mkRootfs(t, nil)
		if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/dev/zero", filepath.Join(rootfs, "etc/group")); err != nil {
			t.Fatal(err)
		}
		// /dev/zero inside the rootfs does not exist: no group file.
		mustGen(t, testImage(), rootfs, Options{User: "0:0"})
		if err := os.MkdirAll(filepath.Join(rootfs, "dev"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mknod(filepath.Join(rootfs, "dev/zero"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))); err != nil {
			t.Skipf("mknod: %v", err)
		}
		_, err := gen(t, testImage(), rootfs, Options{User: "0:0"})
		wantErr(t, err, "not a regular file")
	})
}

// Working directory: the option's, the image's, or "/"; cleaned; relative
// is an error.
func TestWorkdir(t *testing.T) {
	rootfs := stdRootfs(t)
	tests := []struct {
		image, opt, want, err string
	}{
		{want: "/"},
		{image: "/app", want: "/app"},
		{image: "/app", opt: "/srv//x/../y/", want: "/srv/y"},
		{opt: "rel/dir", err: "--workdir"},
		{image: "rel", err: "image config WorkingDir"},
	}
	for _, tt := range tests {
		img := testImage()
		img.Config.WorkingDir = tt.image
		s, err := gen(t, img, rootfs, Options{Workdir: tt.opt})
		if tt.err != "" {
			wantErr(t, err, tt.err, "absolute")
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if s.Process.Cwd != tt.want {
			t.Errorf("image %q opt %q: cwd = %q, want %q", tt.image, tt.opt, s.Process.Cwd, tt.want)
		}
	}
}

// -t sets process.terminal; OOMScoreAdj is passed and checked;
// no-new-privileges follows --security-opt.
func TestProcessFlags(t *testing.T) {
	rootfs := stdRootfs(t)
	s := mustGen(t, testImage(), rootfs, Options{})
	if s.Process.Terminal || s.Process.NoNewPrivileges || s.Process.OOMScoreAdj != nil {
		t.Errorf("defaults: terminal %v, nnp %v, oom %v", s.Process.Terminal, s.Process.NoNewPrivileges, s.Process.OOMScoreAdj)
	}
	adj := -500
	s = mustGen(t, testImage(), rootfs, Options{TTY: true, OOMScoreAdj: &adj, SecurityOpt: []string{"no-new-privileges"}})
	if !s.Process.Terminal || !s.Process.NoNewPrivileges || s.Process.OOMScoreAdj == nil || *s.Process.OOMScoreAdj != -500 {
		t.Errorf("got terminal %v, nnp %v, oom %v", s.Process.Terminal, s.Process.NoNewPrivileges, s.Process.OOMScoreAdj)
	}
	bad := 1001
	_, err := gen(t, testImage(), rootfs, Options{OOMScoreAdj: &bad})
	wantErr(t, err, "--oom-score-adj 1001")
}

// Stop signals: names in any spelling or numbers, recorded normalised.
func TestStopSignal(t *testing.T) {
	rootfs := stdRootfs(t)
	tests := []struct {
		image, opt, want, err string
	}{
		{},
		{image: "SIGQUIT", want: "SIGQUIT"},
		{image: "SIGQUIT", opt: "term", want: "SIGTERM"},
		{opt: "9", want: "SIGKILL"},
		{opt: "SIGRTMIN+3", want: "37"},
		{opt: "RTMAX-1", want: "63"},
		{opt: "SIGFOO", err: "--stop-signal SIGFOO"},
		{opt: "65", err: "out of range"},
		{opt: "0", err: "out of range"},
		{image: "BOGUS", err: "image config StopSignal BOGUS"},
	}
	for _, tt := range tests {
		img := testImage()
		img.Config.StopSignal = tt.image
		s, err := gen(t, img, rootfs, Options{StopSignal: tt.opt})
		if tt.err != "" {
			wantErr(t, err, tt.err)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Annotations[AnnotationStopSignal]; got != tt.want {
			t.Errorf("image %q opt %q: stop signal %q, want %q", tt.image, tt.opt, got, tt.want)
		}
	}
}

// Annotations are the user's; image labels are never copied.
func TestAnnotations(t *testing.T) {
	img := testImage()
	img.Config.Labels = map[string]string{"run.oci.hooks.stderr": "/etc/shadow"}
	s := mustGen(t, img, stdRootfs(t), Options{Annotations: map[string]string{"a": "b"}, Labels: map[string]string{"l": "v"}})
	if len(s.Annotations) != 1 || s.Annotations["a"] != "b" {
		t.Errorf("annotations = %v, want only the user's", s.Annotations)
	}
}
