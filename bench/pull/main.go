// Command pull times pulling and unpacking one realistic image (about 1 GB
// in 12 layers, built offline and deterministically) from a local Debian
// docker-registry with hull, podman, containerd's ctr and skopeo + umoci,
// in one run, round-robin, cold (empty store) and warm (image present),
// and prints medians and ratios.
//
//	make bench-pull                  # or: go run ./bench/pull [flags]
//
// It needs root, Debian's docker-registry, podman, containerd, skopeo and
// umoci; tools that are missing are skipped. The image's layers are cached
// in the work dir, keyed by the flags that shape them.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/pgzip"
)

type config struct {
	work    string
	hull    string
	size    int64
	layers  int
	runs    int
	tools   []string
	timeout time.Duration
}

func main() {
	var c config
	var tools string
	flag.StringVar(&c.work, "work", "/var/tmp/hull-bench-pull", "work dir (layers cache, registry, stores); on a disk, not tmpfs")
	flag.StringVar(&c.hull, "hull", "bin/hull", "hull binary")
	flag.Int64Var(&c.size, "size", 1<<30, "uncompressed image size in bytes")
	flag.IntVar(&c.layers, "layers", 12, "number of layers")
	flag.IntVar(&c.runs, "runs", 3, "measured runs per tool, cold and warm each")
	flag.StringVar(&tools, "tools", "hull,podman,ctr,skopeo+umoci", "tools to time")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Minute, "limit per pull")
	flag.Parse()
	c.tools = strings.Split(tools, ",")
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "bench/pull:", err)
		os.Exit(1)
	}
}

func run(c config) error {
	if os.Geteuid() != 0 {
		return errors.New("run as root (the tools unpack with real ownership and mounts)")
	}
	hull, err := filepath.Abs(c.hull)
	if err != nil {
		return err
	}
	c.hull = hull
	if err := os.MkdirAll(c.work, 0o755); err != nil {
		return err
	}
	layers, err := buildLayers(c)
	if err != nil {
		return err
	}
	addr, stop, err := startRegistry(c.work)
	if err != nil {
		return err
	}
	defer stop()
	ref := addr + "/bench/big:1"
	if err := pushImage(ref, layers); err != nil {
		return err
	}
	var total, compressed int64
	for _, l := range layers {
		sz, _ := l.Size()
		compressed += sz
	}
	total = c.size
	fmt.Fprintf(os.Stderr, "bench/pull: image %s: %d layers, %.0f MB uncompressed, %.0f MB compressed\n", ref, len(layers), float64(total)/1e6, float64(compressed)/1e6)

	var ts []tool
	for _, name := range c.tools {
		t, err := newTool(name, c, ref)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench/pull: skipping %s: %v\n", name, err)
			continue
		}
		ts = append(ts, t)
	}
	results := map[string]map[string][]time.Duration{}
	for round := 0; round < c.runs; round++ {
		for i := range ts {
			t := ts[(i+round)%len(ts)]
			if results[t.name] == nil {
				results[t.name] = map[string][]time.Duration{}
			}
			store := filepath.Join(c.work, "stores", fmt.Sprintf("%s-%d", strings.ReplaceAll(t.name, "+", "-"), round))
			cleanStore(store)
			if err := os.MkdirAll(store, 0o755); err != nil {
				return err
			}
			stopTool, err := t.setup(store)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			for _, phase := range []string{"cold", "warm"} {
				d, err := timed(c.timeout, t.pull(store))
				if err != nil {
					stopTool()
					return fmt.Errorf("%s %s pull: %w", t.name, phase, err)
				}
				results[t.name][phase] = append(results[t.name][phase], d)
				fmt.Fprintf(os.Stderr, "bench/pull: round %d %-13s %s %7.2f s\n", round+1, t.name, phase, d.Seconds())
			}
			stopTool()
			cleanStore(store)
		}
	}
	report(os.Stdout, c, ts, results, compressed)
	return nil
}

func timed(limit time.Duration, cmds [][]string) (time.Duration, error) {
	start := time.Now()
	for _, argv := range cmds {
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		cancel()
		if err != nil {
			return 0, fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out.String())
		}
	}
	return time.Since(start), nil
}

// tool is one way of pulling and unpacking an image.
type tool struct {
	name  string
	setup func(store string) (stop func(), err error)
	pull  func(store string) [][]string
}

func newTool(name string, c config, ref string) (tool, error) {
	noop := func(string) (func(), error) { return func() {}, nil }
	switch name {
	case "hull":
		if _, err := os.Stat(c.hull); err != nil {
			return tool{}, err
		}
		return tool{name: name, setup: noop, pull: func(s string) [][]string {
			return [][]string{{c.hull, "--root", s + "/root", "--runroot", s + "/run", "--registries-conf", s + "/none.json", "pull", "-q", ref}}
		}}, nil
	case "podman":
		p, err := exec.LookPath("podman")
		if err != nil {
			return tool{}, err
		}
		return tool{name: name, setup: noop, pull: func(s string) [][]string {
			return [][]string{{p, "--root", s + "/root", "--runroot", s + "/run", "--storage-driver", "overlay", "pull", "-q", "--tls-verify=false", ref}}
		}}, nil
	case "ctr":
		ctr, err := exec.LookPath("ctr")
		if err != nil {
			return tool{}, err
		}
		ctd, err := exec.LookPath("containerd")
		if err != nil {
			return tool{}, err
		}
		return tool{name: name, setup: func(s string) (func(), error) { return startContainerd(ctd, s) },
			pull: func(s string) [][]string {
				return [][]string{{ctr, "--address", s + "/containerd.sock", "images", "pull", "--plain-http", ref}}
			}}, nil
	case "skopeo+umoci":
		sk, err := exec.LookPath("skopeo")
		if err != nil {
			return tool{}, err
		}
		um, err := exec.LookPath("umoci")
		if err != nil {
			return tool{}, err
		}
		return tool{name: name, setup: noop, pull: func(s string) [][]string {
			// Warm: skopeo finds the blobs in the layout; umoci unpacks anew
			// (it has no store of unpacked layers).
			bundle := fmt.Sprintf("%s/bundle-%d", s, time.Now().UnixNano())
			return [][]string{
				{sk, "copy", "-q", "--src-tls-verify=false", "docker://" + ref, "oci:" + s + "/oci:big"},
				{um, "unpack", "--image", s + "/oci:big", bundle},
			}
		}}, nil
	}
	return tool{}, fmt.Errorf("unknown tool %q", name)
}

// startContainerd runs a private containerd with its state in store.
func startContainerd(bin, store string) (func(), error) {
	cfg := filepath.Join(store, "config.toml")
	conf := fmt.Sprintf("version = 2\nroot = %q\nstate = %q\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = %q\n", store+"/root", store+"/state", store+"/containerd.sock")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--config", cfg, "--log-level", "error")
	logf, _ := os.Create(filepath.Join(store, "containerd.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
	}
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("unix", store+"/containerd.sock"); err == nil {
			c.Close()
			return stop, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	data, _ := os.ReadFile(filepath.Join(store, "containerd.log"))
	return nil, fmt.Errorf("containerd did not start: %s", data)
}

// cleanStore removes a store, unmounting anything left below it first.
func cleanStore(dir string) {
	_ = exec.Command("sh", "-c", "grep -o ' "+dir+"[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l").Run()
	_ = os.RemoveAll(dir)
}

func startRegistry(work string) (string, func(), error) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		return "", nil, fmt.Errorf("docker-registry (Debian package) is needed: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := l.Addr().String()
	l.Close()
	dir := filepath.Join(work, "registry")
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	cfg := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("version: 0.1\nlog: {level: error}\nstorage:\n  filesystem: {rootdirectory: %s}\nhttp: {addr: %s}\n", dir+"/data", addr)), 0o644); err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "serve", cfg)
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); _ = os.RemoveAll(dir) }
	for i := 0; i < 100; i++ {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			return addr, stop, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return "", nil, errors.New("docker-registry did not start")
}

func pushImage(ref string, layers []v1.Layer) error {
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Cmd = []string{"/bin/sh"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	return remote.Write(r, img, remote.WithJobs(4))
}

// buildLayers makes (or finds cached) the image's layers: deterministic
// trees of directories and files of sizes from 1 KiB to 4 MiB, half of the
// files random bytes (like binaries and compressed assets), half text that
// compresses about 4:1 (like sources and docs).
func buildLayers(c config) ([]v1.Layer, error) {
	dir := filepath.Join(c.work, fmt.Sprintf("layers-%d-%d", c.size, c.layers))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var out []v1.Layer
	per := c.size / int64(c.layers)
	for i := 0; i < c.layers; i++ {
		path := filepath.Join(dir, fmt.Sprintf("%02d.tar.gz", i))
		if _, err := os.Stat(path); err != nil {
			fmt.Fprintf(os.Stderr, "bench/pull: building layer %d/%d\n", i+1, c.layers)
			if err := writeLayer(path, i, per); err != nil {
				return nil, err
			}
		}
		l, err := tarball.LayerFromFile(path)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

var words = strings.Fields("the quick brown fox jumps over a lazy dog while containers start and images unpack into layers of files that compress")

func writeLayer(path string, idx int, size int64) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	zw := pgzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	rng := rand.New(rand.NewPCG(uint64(idx), 42))
	mtime := time.Unix(1700000000, 0)
	var written int64
	for d := 0; written < size; d++ {
		dname := fmt.Sprintf("layer%02d/dir%03d", idx, d)
		if err := tw.WriteHeader(&tar.Header{Name: dname + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime}); err != nil {
			return err
		}
		for n := 0; n < 50 && written < size; n++ {
			// Log-uniform sizes from 1 KiB to 4 MiB.
			sz := int64(1024 << rng.IntN(13))
			sz += rng.Int64N(sz)
			body := make([]byte, sz)
			if n%2 == 0 {
				for i := range body {
					body[i] = byte(rng.Uint32())
				}
			} else {
				var b bytes.Buffer
				for int64(b.Len()) < sz {
					b.WriteString(words[rng.IntN(len(words))])
					b.WriteByte(' ')
				}
				copy(body, b.Bytes())
			}
			h := &tar.Header{Name: fmt.Sprintf("%s/f%03d", dname, n), Typeflag: tar.TypeReg, Mode: 0o644, Size: sz, ModTime: mtime}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if _, err := tw.Write(body); err != nil {
				return err
			}
			written += sz
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func report(w io.Writer, c config, ts []tool, res map[string]map[string][]time.Duration, compressed int64) {
	fastest := time.Duration(0)
	for _, t := range ts {
		if t.name == "hull" {
			continue
		}
		if m := median(res[t.name]["cold"]); fastest == 0 || m < fastest {
			fastest = m
		}
	}
	hullCold := median(res["hull"]["cold"])
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "tool\tcold median (s)\twarm median (s)\thull/tool cold\tMB/s cold\t\n")
	for _, t := range ts {
		cold, warm := median(res[t.name]["cold"]), median(res[t.name]["warm"])
		ratio := "-"
		if t.name != "hull" && hullCold > 0 {
			ratio = fmt.Sprintf("%.2f", hullCold.Seconds()/cold.Seconds())
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%s\t%.0f\t\n", t.name, cold.Seconds(), warm.Seconds(), ratio, float64(c.size)/1e6/cold.Seconds())
	}
	tw.Flush()
	if fastest > 0 && hullCold > 0 {
		fmt.Fprintf(w, "\nhull cold / fastest other cold: %.2f (target <= 0.6)\n", hullCold.Seconds()/fastest.Seconds())
	}
	fmt.Fprintf(w, "image: %d layers, %.0f MB uncompressed, %.0f MB compressed; runs=%d, round-robin; work dir %s; %s\n", c.layers, float64(c.size)/1e6, float64(compressed)/1e6, c.runs, c.work, time.Now().UTC().Format(time.RFC3339))
}
