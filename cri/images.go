package cri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/opencontainers/go-digest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hull-runtime/hull/image"
	"github.com/hull-runtime/hull/image/ref"
	"github.com/hull-runtime/hull/image/registry"
	"github.com/hull-runtime/hull/store"
)

// An image, in CRI, is one image id (the config digest, "sha256:..."), with
// every name that points at it: tags in RepoTags, and "repo@digest" forms in
// RepoDigests, as containerd reports them.

// group collects the names of each image id, in the order first seen.
func group(sums []image.Summary) [][]image.Summary {
	var out [][]image.Summary
	at := map[digest.Digest]int{}
	for _, s := range sums {
		if s.Err != nil || s.ID == "" {
			continue // unreadable blobs: not an image a kubelet can use
		}
		i, ok := at[s.ID]
		if !ok {
			i = len(out)
			at[s.ID] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], s)
	}
	return out
}

// criImage describes the image whose names are sums (one id).
func (s *Server) criImage(sums []image.Summary) *runtimeapi.Image {
	id := sums[0].ID.String()
	img := &runtimeapi.Image{Id: id, Spec: &runtimeapi.ImageSpec{Image: id}}
	for _, sum := range sums {
		r := sum.Ref
		if r == (ref.Ref{}) {
			continue
		}
		repo := r.Domain() + "/" + r.Repository()
		if r.Tag() != "" {
			img.RepoTags = appendNew(img.RepoTags, repo+":"+r.Tag())
		}
		d := r.Digest()
		if d == "" {
			d = sum.Target.Digest.String() // what the tag resolved to
		}
		img.RepoDigests = appendNew(img.RepoDigests, repo+"@"+d)
		img.Size = max(img.Size, uint64(sum.Size))
	}
	if img.Size == 0 {
		img.Size = uint64(sums[0].Size)
	}
	if in, err := s.opts.Images.InspectImage(id); err == nil {
		user, _, _ := strings.Cut(in.Config.User, ":")
		if uid, err := strconv.ParseInt(user, 10, 64); err == nil {
			img.Uid = &runtimeapi.Int64Value{Value: uid}
		} else {
			img.Username = user
		}
	}
	for _, p := range s.opts.PinnedImages {
		if slices.Contains(img.RepoTags, p) || slices.Contains(img.RepoDigests, p) || p == id {
			img.Pinned = true
		}
		if r, err := ref.Parse(p); err == nil && (slices.Contains(img.RepoTags, r.String()) || slices.Contains(img.RepoDigests, r.String())) {
			img.Pinned = true
		}
	}
	return img
}

func appendNew(list []string, v string) []string {
	if slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}

// find returns every name of the image spec names (a name, an id, or a
// repo digest), or nil when there is no such image.
func (s *Server) find(spec *runtimeapi.ImageSpec) ([]image.Summary, error) {
	if spec == nil || spec.Image == "" {
		return nil, status.Error(codes.InvalidArgument, "image spec: no image given")
	}
	found, err := s.opts.Images.Find(spec.Image)
	if errors.Is(err, image.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	all, err := s.opts.Images.List()
	if err != nil {
		return nil, err
	}
	var out []image.Summary
	for _, a := range all {
		if a.Err == nil && a.ID == found[0].ID {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// ListImages lists every image, or those a filter names.
func (s *Server) ListImages(ctx context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	if f := req.GetFilter().GetImage(); f != nil && f.Image != "" {
		sums, err := s.find(f)
		if err != nil || sums == nil {
			return &runtimeapi.ListImagesResponse{}, err
		}
		return &runtimeapi.ListImagesResponse{Images: []*runtimeapi.Image{s.criImage(sums)}}, nil
	}
	all, err := s.opts.Images.List()
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ListImagesResponse{}
	for _, g := range group(all) {
		resp.Images = append(resp.Images, s.criImage(g))
	}
	return resp, nil
}

// ImageStatus describes one image; an unknown image is not an error but an
// empty answer, as the CRI requires.
func (s *Server) ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	sums, err := s.find(req.GetImage())
	if err != nil || sums == nil {
		return &runtimeapi.ImageStatusResponse{}, err
	}
	resp := &runtimeapi.ImageStatusResponse{Image: s.criImage(sums)}
	if req.Verbose {
		in, err := s.opts.Images.InspectImage(resp.Image.Id)
		if err != nil {
			return nil, err
		}
		info, err := json.Marshal(map[string]any{"imageSpec": in})
		if err != nil {
			return nil, err
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

// PullImage pulls an image with the credentials the kubelet sends (for the
// image's registry; mirrors keep the auth files') and returns its id.
func (s *Server) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	spec := req.GetImage()
	if spec == nil || spec.Image == "" {
		return nil, status.Error(codes.InvalidArgument, "pull: no image given")
	}
	if a := req.GetAuth(); a != nil {
		ctx = registry.WithCredentials(ctx, authn.AuthConfig{
			Username: a.Username, Password: a.Password, Auth: a.Auth,
			IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken,
		})
	}
	res, err := s.opts.Images.Pull(ctx, spec.Image, image.PullOptions{})
	if err != nil {
		return nil, pullError(spec.Image, err)
	}
	s.log.Info("cri: pulled", "image", res.Image.Name, "id", res.Config.Digest)
	return &runtimeapi.PullImageResponse{ImageRef: res.Config.Digest.String()}, nil
}

// pullError gives the kubelet a status code it can act on.
func pullError(img string, err error) error {
	code := codes.Unknown
	switch {
	case errors.Is(err, registry.ErrNotFound), errors.Is(err, registry.ErrNoMatchingPlatform):
		code = codes.NotFound
	case errors.Is(err, registry.ErrUnauthorized), errors.Is(err, registry.ErrNotLoggedIn):
		code = codes.Unauthenticated
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	}
	return status.Error(code, fmt.Sprintf("pull %s: %v", img, err))
}

// RemoveImage removes an image with all of its names. Removing an image that
// is not there succeeds: the call is idempotent.
func (s *Server) RemoveImage(ctx context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	sums, err := s.find(req.GetImage())
	if err != nil || sums == nil {
		return &runtimeapi.RemoveImageResponse{}, err
	}
	names := make([]string, 0, len(sums))
	for _, sum := range sums {
		names = append(names, sum.Name)
	}
	// A concurrent RemoveImage may take a name first: gone is what was asked.
	if _, err := s.opts.Images.Remove(ctx, names, true, nil); err != nil && !errors.Is(err, image.ErrNotFound) && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("remove image %s: %w", req.GetImage().GetImage(), err)
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}

// ImageFsInfo reports what the image snapshots take on their filesystem.
func (s *Server) ImageFsInfo(ctx context.Context, req *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	u, err := s.fs.get()
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{{
		Timestamp:  u.at.UnixNano(),
		FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: s.fs.root},
		UsedBytes:  &runtimeapi.UInt64Value{Value: u.bytes},
		InodesUsed: &runtimeapi.UInt64Value{Value: u.inodes},
	}}}, nil
}

// fsUsageCache measures a directory tree at most once per fsUsageTTL: the
// kubelet asks every few seconds, and a walk of a large store is not free.
type fsUsageCache struct {
	root string
	mu   sync.Mutex
	last fsUsage
}

type fsUsage struct {
	at            time.Time
	bytes, inodes uint64
}

const fsUsageTTL = 10 * time.Second

func (c *fsUsageCache) get() (fsUsage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.last.at.IsZero() && time.Since(c.last.at) < fsUsageTTL {
		return c.last, nil
	}
	u := fsUsage{at: time.Now()}
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{} // hard links count once
	var rootDev uint64
	if fi, err := os.Stat(c.root); err == nil {
		rootDev = fi.Sys().(*syscall.Stat_t).Dev
	}
	err := filepath.WalkDir(c.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if st.Dev != rootDev && d.IsDir() {
			return fs.SkipDir // a container's rootfs mounted inside: not image data
		}
		if seen[inode{st.Dev, st.Ino}] {
			return nil
		}
		seen[inode{st.Dev, st.Ino}] = true
		u.inodes++
		u.bytes += uint64(st.Blocks) * 512
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fsUsage{}, fmt.Errorf("image filesystem usage of %s: %w", c.root, err)
	}
	c.last = u
	return u, nil
}
