// Package globals holds the flags every hull command sees, as Podman names
// them, and opens the stores they point at; `hull` and `hull-cri` share it.
package globals

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/hull-runtime/hull/engine"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hull-runtime/hull/image"
	"github.com/hull-runtime/hull/image/registry"
	"github.com/hull-runtime/hull/image/snapshot"
	"github.com/hull-runtime/hull/image/snapshot/native"
	"github.com/hull-runtime/hull/image/snapshot/overlay"
)

// Globals are the flags every command sees, as Podman names them.
type Globals struct {
	// Root and Runroot are --root (images, containers) and --runroot
	// (per-boot state).
	Root, Runroot  string
	StorageDriver  string // --storage-driver
	LogLevel       string // --log-level
	RegistriesConf string // --registries-conf
	AuthFile       string // --authfile
	Insecure       []string
	Parallel       int    // --max-concurrent-downloads
	Monitor        string // --monitor, the hull-monitor binary
	// Log is set up by Setup from LogLevel.
	Log *slog.Logger
	// Version is hull's, for the registry User-Agent.
	Version string
}

func defaultRoots() (string, string) {
	if os.Geteuid() == 0 {
		return "/var/lib/hull", "/run/hull"
	}
	data := os.Getenv("XDG_DATA_HOME")
	if data == "" {
		data = filepath.Join(os.Getenv("HOME"), ".local", "share")
	}
	run := os.Getenv("XDG_RUNTIME_DIR")
	if run == "" {
		run = filepath.Join(os.TempDir(), fmt.Sprintf("hull-%d", os.Geteuid()))
	}
	return filepath.Join(data, "hull"), filepath.Join(run, "hull")
}

func (g *Globals) Register(root *cobra.Command) {
	dr, drun := defaultRoots()
	f := root.PersistentFlags()
	f.StringVar(&g.Root, "root", dr, "persistent storage (images, containers)")
	f.StringVar(&g.Runroot, "runroot", drun, "per-boot state (tmpfs)")
	f.StringVar(&g.StorageDriver, "storage-driver", "", "snapshotter: overlay or native (default: overlay where it works)")
	f.StringVar(&g.LogLevel, "log-level", "warn", "debug, info, warn or error")
	f.StringVar(&g.RegistriesConf, "registries-conf", "/etc/hull/registries.json", `registry mirrors and insecure registries: {"mirrors": {"docker.io": ["host:port"]}, "insecure": ["host:port"]}`)
	f.StringVar(&g.AuthFile, "authfile", "", "credentials file (default: $REGISTRY_AUTH_FILE, then $XDG_RUNTIME_DIR/containers/auth.json; ~/.docker/config.json is also read)")
	f.StringSliceVar(&g.Insecure, "insecure-registry", nil, "registry (host:port) to reach over plain HTTP; loopback registries always may")
	f.IntVar(&g.Parallel, "max-concurrent-downloads", 3, "blobs downloaded at once")
	f.StringVar(&g.Monitor, "monitor", "", "hull-monitor binary (default: beside hull, then PATH)")
}

func (g *Globals) Setup() error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.LogLevel)); err != nil {
		return fmt.Errorf("--log-level %q: %w", g.LogLevel, err)
	}
	g.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	if g.Parallel < 1 {
		return errors.New("--max-concurrent-downloads must be at least 1")
	}
	return nil
}

// authFiles lists the credential files to read, the one to write first.
func (g *Globals) AuthFiles() []string {
	var files []string
	switch {
	case g.AuthFile != "":
		files = append(files, g.AuthFile)
	case os.Getenv("REGISTRY_AUTH_FILE") != "":
		files = append(files, os.Getenv("REGISTRY_AUTH_FILE"))
	default:
		run := os.Getenv("XDG_RUNTIME_DIR")
		if run == "" {
			run = filepath.Join("/run/user", fmt.Sprint(os.Geteuid()))
		}
		files = append(files, filepath.Join(run, "containers", "auth.json"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		files = append(files, filepath.Join(home, ".docker", "config.json"))
	}
	return files
}

// registriesFile is the --registries-conf file.
type registriesFile struct {
	Mirrors  map[string][]string `json:"mirrors"`
	Insecure []string            `json:"insecure"`
}

func (g *Globals) RegistryConfig() (registry.Config, error) {
	cfg := registry.Config{AuthFiles: g.AuthFiles(), UserAgent: "hull/" + g.Version, Insecure: g.Insecure}
	data, err := os.ReadFile(g.RegistriesConf)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("--registries-conf: %w", err)
	}
	var rf registriesFile
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rf); err != nil {
		return cfg, fmt.Errorf("--registries-conf %s: %w", g.RegistriesConf, err)
	}
	cfg.Mirrors = rf.Mirrors
	cfg.Insecure = append(cfg.Insecure, rf.Insecure...)
	return cfg, nil
}

// images opens the image service of --root.
func (g *Globals) Images(progress io.Writer) (*image.Service, error) {
	rc, err := g.RegistryConfig()
	if err != nil {
		return nil, err
	}
	name, snaps, err := g.Snapshotter()
	if err != nil {
		return nil, err
	}
	s, err := image.New(image.Options{Root: g.Root, Registry: rc, Log: g.Log, Parallel: g.Parallel}, name, snaps)
	if err != nil {
		snaps.Close()
		return nil, err
	}
	s.Progress = progress
	return s, nil
}

// snapshotter opens the snapshotter of --storage-driver, or picks overlay
// where the kernel and the filesystem of --root support it.
func (g *Globals) Snapshotter() (string, snapshot.Snapshotter, error) {
	name := g.StorageDriver
	if data, err := os.ReadFile(filepath.Join(g.Root, "storage-driver")); err == nil && name != "" {
		if was := strings.TrimSpace(string(data)); was != "" && was != name {
			return "", nil, fmt.Errorf("--storage-driver %s: the store in %s uses %s; use that, or another --root", name, g.Root, was)
		}
	}
	if name == "" {
		// Remember the choice: a store is unpacked by one snapshotter.
		if data, err := os.ReadFile(filepath.Join(g.Root, "storage-driver")); err == nil && len(strings.TrimSpace(string(data))) > 0 {
			name = strings.TrimSpace(string(data))
		} else if overlay.Supported(filepath.Join(g.Root, "snapshots")) == nil {
			name = "overlay"
		} else {
			name = "native"
		}
	}
	var snaps snapshot.Snapshotter
	var err error
	switch name {
	case "overlay":
		snaps, err = overlay.New(filepath.Join(g.Root, "snapshots", "overlay"))
	case "native":
		snaps, err = native.New(filepath.Join(g.Root, "snapshots", "native"))
	default:
		return "", nil, fmt.Errorf("--storage-driver %q: use overlay or native", name)
	}
	if err != nil {
		return "", nil, err
	}
	if err := rememberDriver(g.Root, name); err != nil {
		snaps.Close()
		return "", nil, err
	}
	return name, snaps, nil
}

// rememberDriver records the store's snapshotter, atomically: a store is
// unpacked by one snapshotter, and a process killed while writing must not
// leave a file naming none.
func rememberDriver(root, name string) error {
	path := filepath.Join(root, "storage-driver")
	if data, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(data)) == name {
		return nil
	}
	if err := os.MkdirAll(root, 0o711); err != nil {
		return fmt.Errorf("--root %s: %w", root, err)
	}
	tmp, err := os.CreateTemp(root, ".storage-driver-*")
	if err != nil {
		return fmt.Errorf("--root %s: %w", root, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(name + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("--root %s: %w", root, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("--root %s: %w", root, err)
	}
	return os.Rename(tmp.Name(), path)
}

// engine opens the engine of --root/--runroot.
func (g *Globals) Engine(progress io.Writer) (*engine.Engine, func(), error) {
	imgs, err := g.Images(progress)
	if err != nil {
		return nil, nil, err
	}
	e, err := engine.New(g.Root, g.Runroot, imgs, g.Monitor, g.Log)
	if err != nil {
		imgs.Close()
		return nil, nil, err
	}
	return e, func() { imgs.Close() }, nil
}
