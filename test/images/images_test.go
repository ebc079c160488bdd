package images

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

func TestPullUnpacksWhiteoutsAndOpaqueDirectories(t *testing.T) {
	reg := newRegistry(t)
	e := newEnv(t)
	reg.push(t, "layers/test:1",
		busyboxLayer(t),
		layerOf(t, dir("etc"), file("etc/a", "a"), file("etc/b", "b"), dir("data"), file("data/x", "x"), hardlink("etc/a-link", "etc/a")),
		layerOf(t, dir("etc"), whiteout("etc", "a"), dir("data"), opaque("data"), file("data/y", "y")),
		layerOf(t, dir("etc"), file("etc/c", "c")),
	)
	e.must("pull", "-q", reg.addr+"/layers/test:1")
	mnt := strings.TrimSpace(e.must("image", "mount", reg.addr+"/layers/test:1"))
	defer e.must("image", "unmount", reg.addr+"/layers/test:1")
	for p, want := range map[string]bool{
		"bin/busybox": true, "etc/hostname": true, "etc/a": false, "etc/a-link": true,
		"etc/b": true, "etc/c": true, "data/x": false, "data/y": true,
	} {
		if got := exists(filepath.Join(mnt, p)); got != want {
			t.Errorf("%s exists = %v, want %v", p, got, want)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(mnt, "etc/a-link")); string(data) != "a" {
		t.Errorf("hard link kept %q", data)
	}
	if err := os.WriteFile(filepath.Join(mnt, "etc/new"), nil, 0o644); err == nil {
		t.Error("the image mount is writable")
	}
}

func TestImagesTagInspectAndRmi(t *testing.T) {
	reg := newRegistry(t)
	e := newEnv(t)
	img := reg.push(t, "lib/app:1.0", busyboxLayer(t))
	cfgDigest, _ := img.ConfigName()
	ref := reg.addr + "/lib/app:1.0"
	e.must("pull", "-q", ref)
	e.must("tag", ref, "app:extra")
	out := e.must("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
	for _, want := range []string{reg.addr + "/lib/app:1.0 " + cfgDigest.Hex[:12], "app:extra " + cfgDigest.Hex[:12]} {
		if !strings.Contains(out, want) {
			t.Errorf("images lacks %q:\n%s", want, out)
		}
	}
	if q := strings.Fields(e.must("images", "-q")); len(q) != 1 || q[0] != cfgDigest.Hex[:12] {
		t.Errorf("images -q = %v, want one id %s", q, cfgDigest.Hex[:12])
	}
	var insp []struct {
		ID       string `json:"Id"`
		RepoTags []string
		Os       string
		Config   struct{ Cmd []string }
		RootFS   struct{ Layers []string }
	}
	if err := json.Unmarshal([]byte(e.must("image", "inspect", "app:extra")), &insp); err != nil {
		t.Fatal(err)
	}
	if len(insp) != 1 || insp[0].ID != cfgDigest.String() || len(insp[0].RepoTags) != 2 || insp[0].Os != "linux" || insp[0].Config.Cmd[0] != "/bin/sh" || len(insp[0].RootFS.Layers) != 1 {
		t.Errorf("inspect: %+v", insp)
	}
	// An id with two names needs --force.
	if _, errOut, err := e.hull("rmi", cfgDigest.Hex[:12]); err == nil || !strings.Contains(errOut, "--force") {
		t.Errorf("rmi of a shared id: %v %s", err, errOut)
	}
	e.must("rmi", "app:extra")
	if len(e.blobs()) == 0 {
		t.Fatal("removing one of two names removed the blobs")
	}
	e.must("rmi", ref)
	if b := e.blobs(); len(b) != 0 {
		t.Errorf("blobs left after the last rmi: %v", b)
	}
	if out := e.must("images", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("images after rmi: %q", out)
	}
	if _, errOut, err := e.hull("rmi", "nothing:here"); err == nil || !strings.Contains(errOut, "nothing:here") {
		t.Errorf("rmi of an unknown image: %v %s", err, errOut)
	}
}

func TestSaveAndLoadRoundTripAndSkopeoReadsTheArchive(t *testing.T) {
	reg := newRegistry(t)
	e := newEnv(t)
	ref := reg.addr + "/save/me:2"
	reg.push(t, "save/me:2", busyboxLayer(t), layerOf(t, file("hello", "world")))
	e.must("pull", "-q", ref)
	archive := filepath.Join(e.dir, "img.tar")
	e.must("save", "-o", archive, ref)
	if skopeo, err := exec.LookPath("skopeo"); err == nil {
		for _, tr := range []string{"oci-archive:" + archive, "docker-archive:" + archive} {
			if out, err := exec.Command(skopeo, "inspect", tr).CombinedOutput(); err != nil {
				t.Errorf("skopeo inspect %s: %v\n%s", tr, err, out)
			}
		}
	}
	e2 := newEnv(t)
	out := e2.must("load", "-i", archive)
	if !strings.Contains(out, "Loaded image: "+ref) {
		t.Fatalf("load said %q", out)
	}
	mnt := strings.TrimSpace(e2.must("image", "mount", ref))
	defer e2.must("image", "unmount", ref)
	if data, err := os.ReadFile(filepath.Join(mnt, "hello")); err != nil || string(data) != "world" {
		t.Errorf("loaded image's file: %q %v", data, err)
	}
}

func TestLoadsADockerArchiveWrittenBySkopeo(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skopeo not installed")
	}
	reg := newRegistry(t)
	e := newEnv(t)
	reg.push(t, "from/skopeo:1", busyboxLayer(t), layerOf(t, file("marker", "m")))
	archive := filepath.Join(e.dir, "docker.tar")
	if out, err := exec.Command(skopeo, "copy", "--src-tls-verify=false", "docker://"+reg.addr+"/from/skopeo:1", "docker-archive:"+archive+":example.com/from/skopeo:1").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	out := e.must("load", "-i", archive)
	if !strings.Contains(out, "example.com/from/skopeo:1") {
		t.Fatalf("load said %q", out)
	}
	mnt := strings.TrimSpace(e.must("image", "mount", "example.com/from/skopeo:1"))
	defer e.must("image", "unmount", "example.com/from/skopeo:1")
	if !exists(filepath.Join(mnt, "marker")) || !exists(filepath.Join(mnt, "bin/busybox")) {
		t.Error("files of the docker-archive missing")
	}
}

func TestImportMakesAOneLayerImage(t *testing.T) {
	e := newEnv(t)
	tarball := filepath.Join(e.dir, "rootfs.tar")
	if err := os.WriteFile(tarball, tarOf(t, []entry{dir("etc"), file("etc/os-release", "ID=test\n")}), 0o644); err != nil {
		t.Fatal(err)
	}
	e.must("import", "--change", `CMD ["/bin/true"]`, tarball, "localhost/imported:v1")
	var insp []struct{ Config struct{ Cmd []string } }
	if err := json.Unmarshal([]byte(e.must("image", "inspect", "localhost/imported:v1")), &insp); err != nil || insp[0].Config.Cmd[0] != "/bin/true" {
		t.Fatalf("inspect after import: %+v %v", insp, err)
	}
	mnt := strings.TrimSpace(e.must("image", "mount", "localhost/imported:v1"))
	defer e.must("image", "unmount", "localhost/imported:v1")
	if data, _ := os.ReadFile(filepath.Join(mnt, "etc/os-release")); string(data) != "ID=test\n" {
		t.Errorf("imported file: %q", data)
	}
}

// lyingCase makes the registry misbehave for one blob or manifest.
type lyingCase struct {
	name   string
	setup  func(reg *testRegistry, img v1.Image) string // returns ":tag" or "@digest" to pull
	reason string                                       // in the error
}

func TestALyingRegistryFailsThePullAndLeavesNoImageOrBlob(t *testing.T) {
	layerDigest := func(img v1.Image) string {
		ls, _ := img.Layers()
		d, _ := ls[len(ls)-1].Digest()
		return d.String()
	}
	cases := []lyingCase{
		{"wrong blob bytes", func(reg *testRegistry, img v1.Image) string {
			reg.setFault(layerDigest(img), fault{body: func(b []byte) []byte { c := bytes.Clone(b); c[len(c)/2] ^= 0xff; return c }})
			return ":1"
		}, "digest"},
		{"truncated blob, honest length", func(reg *testRegistry, img v1.Image) string {
			reg.setFault(layerDigest(img), fault{body: func(b []byte) []byte { return b[:len(b)/2] }})
			return ":1"
		}, "bytes"},
		{"content-length shorter than the blob", func(reg *testRegistry, img v1.Image) string {
			ls, _ := img.Layers()
			sz, _ := ls[len(ls)-1].Size()
			reg.setFault(layerDigest(img), fault{contentLength: sz / 3})
			return ":1"
		}, "bytes"},
		{"manifest that is also an index (CVE-2021-41190)", func(reg *testRegistry, img v1.Image) string {
			md, _ := img.Digest()
			reg.setFault(md.String(), fault{body: func(b []byte) []byte {
				var m map[string]any
				_ = json.Unmarshal(b, &m)
				m["manifests"] = []any{map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md.String(), "size": 10}}
				out, _ := json.Marshal(m)
				return out
			}})
			return "@" + md.String()
		}, "manifest"},
		{"pulled by digest, other manifest served", func(reg *testRegistry, img v1.Image) string {
			md, _ := img.Digest()
			reg.setFault(md.String(), fault{body: func(b []byte) []byte { return append(bytes.Clone(b), ' ') }})
			return "@" + md.String()
		}, "digest"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reg := newRegistry(t)
			e := newEnv(t)
			repo := "lie/" + strings.ToLower(strings.Map(func(r rune) rune {
				if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
					return r
				}
				return -1
			}, c.name))
			img := reg.push(t, repo+":1", busyboxLayer(t), randomLayer(t, 256<<10))
			pullRef := repo + c.setup(reg, img)
			_, errOut, err := e.hull("pull", "-q", reg.addr+"/"+pullRef)
			if err == nil {
				t.Fatalf("the pull succeeded")
			}
			if !strings.Contains(strings.ToLower(errOut), c.reason) {
				t.Errorf("error %q does not mention %q", errOut, c.reason)
			}
			if out := e.must("images", "-q"); strings.TrimSpace(out) != "" {
				t.Errorf("an image is listed after a failed pull: %q", out)
			}
			bad := layerDigestOf(img)
			for _, b := range e.blobs() {
				if "sha256:"+b == bad && c.name != "manifest that is also an index (CVE-2021-41190)" && c.name != "pulled by digest, other manifest served" {
					t.Errorf("the lied-about blob %s was committed", bad)
				}
			}
			// The store is consistent: with an honest registry the pull completes.
			reg.clearFaults()
			e.must("pull", "-q", reg.addr+"/"+pullRef)
			e.must("system", "prune", "-a", "-f")
			if b := e.blobs(); len(b) != 0 {
				t.Errorf("blobs left after prune -a: %v", b)
			}
		})
	}
}

func layerDigestOf(img v1.Image) string {
	ls, _ := img.Layers()
	d, _ := ls[len(ls)-1].Digest()
	return d.String()
}

func randomLayer(t *testing.T, n int) v1.Layer {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return layerOf(t, file("random.bin", string(b)))
}

func TestKilledPullResumesAndPruneReclaimsTheLeftovers(t *testing.T) {
	reg := newRegistry(t)
	e := newEnv(t)
	big := randomLayer(t, 4<<20)
	img := reg.push(t, "slow/big:1", busyboxLayer(t), big)
	bigDigest, _ := big.Digest()
	reg.setFault(bigDigest.String(), fault{throttle: 20 * time.Millisecond})
	cmd := exec.Command(hullBin, e.args("pull", "-q", reg.addr+"/slow/big:1")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, served := reg.blobGets(bigDigest.String())
		if served > 1<<20 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	_, servedBefore := reg.blobGets(bigDigest.String())
	if out := e.must("images", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("a killed pull left an image: %q", out)
	}
	df := e.must("system", "df", "-v")
	t.Logf("df after kill:\n%s", df)
	if !strings.Contains(df, "partial downloads") {
		t.Fatalf("system df -v: %s", df)
	}
	reg.clearFaults()
	e.must("pull", "-q", reg.addr+"/slow/big:1")
	_, servedAfter := reg.blobGets(bigDigest.String())
	size, _ := big.Size()
	if resumed := servedAfter - servedBefore; resumed >= size {
		t.Errorf("the second pull downloaded %d bytes of a %d-byte blob: it did not resume", resumed, size)
	}
	cfg, _ := img.ConfigName()
	if out := e.must("images", "-q"); !strings.Contains(out, cfg.Hex[:12]) {
		t.Fatalf("images after the resumed pull: %q", out)
	}
	e.must("rmi", reg.addr+"/slow/big:1")
	e.must("system", "prune", "-f")
	if b := e.blobs(); len(b) != 0 {
		t.Errorf("blobs left after rmi and prune: %v", b)
	}
	ing, _ := os.ReadDir(filepath.Join(e.root, "content", "ingest"))
	if len(ing) != 0 {
		t.Errorf("partial downloads left after prune: %d", len(ing))
	}
}

func TestConcurrentPullsDownloadEachBlobOnce(t *testing.T) {
	reg := newRegistry(t)
	e := newEnv(t)
	big := randomLayer(t, 2<<20)
	reg.push(t, "twice/img:1", busyboxLayer(t), big)
	d, _ := big.Digest()
	reg.setFault(d.String(), fault{throttle: 5 * time.Millisecond})
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for i := 0; i < 2; i++ {
		var b bytes.Buffer
		c := exec.Command(hullBin, e.args("pull", "-q", reg.addr+"/twice/img:1")...)
		c.Stdout, c.Stderr = &b, &b
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, c), append(outs, &b)
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("pull %d: %v\n%s", i, err, outs[i])
		}
	}
	if gets, _ := reg.blobGets(d.String()); gets != 1 {
		t.Errorf("the layer was downloaded %d times by two concurrent pulls, want once", gets)
	}
}

func TestPushToAnotherRepositoryAndPullItBack(t *testing.T) {
	reg := newRegistry(t)
	e := newEnv(t)
	img := reg.push(t, "orig/img:1", busyboxLayer(t), layerOf(t, file("f", "1")))
	cfg, _ := img.ConfigName()
	e.must("pull", "-q", reg.addr+"/orig/img:1")
	e.must("push", "-q", reg.addr+"/orig/img:1", reg.addr+"/copy/img:2")
	e2 := newEnv(t)
	if id := strings.TrimSpace(e2.must("pull", "-q", reg.addr+"/copy/img:2")); id != cfg.Hex {
		t.Errorf("pulled back image id %s, want %s", id, cfg.Hex)
	}
}

func TestNativeSnapshotterUnpacksTheSameTree(t *testing.T) {
	reg := newRegistry(t)
	e := newEnv(t)
	ref := reg.addr + "/native/img:1"
	reg.push(t, "native/img:1",
		busyboxLayer(t),
		layerOf(t, dir("etc"), file("etc/a", "a"), dir("data"), file("data/x", "x")),
		layerOf(t, dir("etc"), whiteout("etc", "a"), dir("data"), opaque("data"), file("data/y", "y")),
	)
	e.must("--storage-driver", "native", "pull", "-q", ref)
	mnt := strings.TrimSpace(e.must("image", "mount", ref)) // the store remembers its driver
	defer e.must("image", "unmount", ref)
	for p, want := range map[string]bool{"bin/busybox": true, "etc/a": false, "data/x": false, "data/y": true} {
		if got := exists(filepath.Join(mnt, p)); got != want {
			t.Errorf("%s exists = %v, want %v", p, got, want)
		}
	}
}

func TestAFullDiskFailsThePullCleanlyAndTheNextPullCompletes(t *testing.T) {
	reg := newRegistry(t)
	e := newEnv(t)
	if err := os.MkdirAll(e.root, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", e.root).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", e.root).Run() })
	ref := reg.addr + "/full/disk:1"
	reg.push(t, "full/disk:1", busyboxLayer(t), randomLayer(t, 16<<20))
	_, errOut, err := e.hull("pull", "-q", ref)
	if err == nil {
		t.Fatal("a pull of 16 MB into 12 MB succeeded")
	}
	if !strings.Contains(errOut, "no space left") && !strings.Contains(errOut, "disk full") {
		t.Errorf("the error does not say the disk is full: %s", errOut)
	}
	if out := e.must("images", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("images after a failed pull: %q", out)
	}
	if out, err := exec.Command("mount", "-o", "remount,size=96m", e.root).CombinedOutput(); err != nil {
		t.Fatalf("grow tmpfs: %v %s", err, out)
	}
	e.must("pull", "-q", ref)
	e.must("rmi", ref)
	e.must("system", "prune", "-f")
	if b := e.blobs(); len(b) != 0 {
		t.Errorf("blobs left: %v", b)
	}
}

func TestAHostileLayerCannotWriteOutsideTheRoot(t *testing.T) {
	reg := newRegistry(t)
	e := newEnv(t)
	canary := t.TempDir()
	if err := os.WriteFile(filepath.Join(canary, "passwd"), []byte("canary"), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := reg.addr + "/hostile/img:1"
	reg.push(t, "hostile/img:1",
		busyboxLayer(t),
		layerOf(t,
			file("../../../../../../"+strings.TrimPrefix(canary, "/")+"/dotdot", "x"),
			symlink("s", canary),
			file("s/passwd", "pwned"),
			symlink("up", "../../../../../../.."+canary),
			file("up/through-relative", "pwned"),
			hardlink("h", canary+"/passwd"),
		),
	)
	_, _, _ = e.hull("pull", "-q", ref) // failing or not, nothing may leak
	entries, _ := os.ReadDir(canary)
	if len(entries) != 1 {
		var names []string
		for _, de := range entries {
			names = append(names, de.Name())
		}
		t.Errorf("files appeared outside the root: %v", names)
	}
	if data, _ := os.ReadFile(filepath.Join(canary, "passwd")); string(data) != "canary" {
		t.Errorf("the canary was overwritten: %q", data)
	}
}

// A layer may list a file without its parent directories, or write through
// a symlink an earlier layer made (usrmerge's lib -> usr/lib). Unpacked
// alone into an overlay upper dir, such a layer would hide the lower
// directory's mode or replace the symlink with a directory.
func TestLayersWithoutTheirParentsKeepTheLowerDirectoriesAndSymlinks(t *testing.T) {
	for _, driver := range []string{"overlay", "native"} {
		t.Run(driver, func(t *testing.T) {
			reg := newRegistry(t)
			e := newEnv(t)
			ref := reg.addr + "/parents/" + driver + ":1"
			reg.push(t, "parents/"+driver+":1",
				busyboxLayer(t),
				layerOf(t, dir("usr"), dir("usr/lib"), symlink("lib", "usr/lib"), entry{name: "tmp", typ: '5', mode: 0o1777}),
				layerOf(t, file("tmp/note", "n")),
				layerOf(t, file("lib/through-link", "l")),
			)
			e.must("--storage-driver", driver, "pull", "-q", ref)
			mnt := strings.TrimSpace(e.must("image", "mount", ref))
			defer e.must("image", "unmount", ref)
			if fi, err := os.Lstat(filepath.Join(mnt, "tmp")); err != nil || fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
				t.Errorf("/tmp after a layer added a file to it: %v %v", fi.Mode(), err)
			}
			if fi, err := os.Lstat(filepath.Join(mnt, "lib")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("/lib is no longer a symlink: %v", err)
			}
			if !exists(filepath.Join(mnt, "usr/lib/through-link")) {
				t.Error("a file written through /lib did not land in /usr/lib")
			}
		})
	}
}

// SIGKILL can land anywhere in a pull: in a download, an unpack, an import
// or a metadata write. Whatever it hit, the store stays usable, the next
// pull completes, and removing the image reclaims everything.
func TestSIGKILLAtRandomPointsLeavesAConsistentStore(t *testing.T) {
	reg := newRegistry(t)
	e := newEnv(t)
	ref := reg.addr + "/kill/img:1"
	reg.push(t, "kill/img:1", busyboxLayer(t), randomLayer(t, 3<<20), layerOf(t, file("top", "t")), randomLayer(t, 2<<20))
	for i, delay := range []time.Duration{0, 5 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond, 150 * time.Millisecond} {
		cmd := exec.Command(hullBin, e.args("pull", "-q", ref)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if _, errOut, err := e.hull("images"); err != nil {
			t.Fatalf("kill %d (after %v): images fails: %v %s", i, delay, err, errOut)
		}
		if _, errOut, err := e.hull("system", "df", "-v"); err != nil {
			t.Fatalf("kill %d (after %v): system df fails: %v %s", i, delay, err, errOut)
		}
	}
	e.must("pull", "-q", ref)
	mnt := strings.TrimSpace(e.must("image", "mount", ref))
	if data, _ := os.ReadFile(filepath.Join(mnt, "top")); string(data) != "t" {
		t.Errorf("file of the image after the killed pulls: %q", data)
	}
	e.must("image", "unmount", ref)
	e.must("rmi", ref)
	e.must("system", "prune", "-f")
	df := e.must("system", "df", "-v")
	for _, line := range strings.Split(df, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && (f[0] == "blobs" || f[0] == "snapshots") && (f[1] != "0" || f[2] != "0") {
			t.Errorf("left after rmi and prune: %q", line)
		}
		if len(f) == 3 && f[0] == "partial" && f[2] != "0" {
			t.Errorf("left after rmi and prune: %q", line)
		}
	}
}

func TestAZstdLayerIsPulledAndUnpacked(t *testing.T) {
	reg := newRegistry(t)
	e := newEnv(t)
	data := tarOf(t, []entry{file("zstd-file", "z")})
	zl, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }, tarball.WithCompression(compression.ZStd))
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.addr + "/zstd/img:1"
	reg.push(t, "zstd/img:1", busyboxLayer(t), zl)
	e.must("pull", "-q", ref)
	mnt := strings.TrimSpace(e.must("image", "mount", ref))
	defer e.must("image", "unmount", ref)
	if got, _ := os.ReadFile(filepath.Join(mnt, "zstd-file")); string(got) != "z" {
		t.Errorf("zstd layer's file: %q", got)
	}
}
