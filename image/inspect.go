package image

import (
	"context"
	"fmt"
	"os"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hull-runtime/hull/image/content"
	"github.com/hull-runtime/hull/image/snapshot"
)

// Inspect is `hull image inspect`'s output for one image, in the shape
// Docker and Podman print (the fields scripts read: Id, RepoTags,
// RepoDigests, Created, Architecture, Os, Config, RootFS, Size).
type Inspect struct {
	ID           string               `json:"Id"`
	Digest       string               `json:"Digest"`
	RepoTags     []string             `json:"RepoTags"`
	RepoDigests  []string             `json:"RepoDigests"`
	Created      *time.Time           `json:"Created,omitempty"`
	Author       string               `json:"Author,omitempty"`
	Architecture string               `json:"Architecture"`
	Os           string               `json:"Os"`
	Variant      string               `json:"Variant,omitempty"`
	Config       ocispec.ImageConfig  `json:"Config"`
	RootFS       InspectRootFS        `json:"RootFS"`
	Size         int64                `json:"Size"`
	MediaType    string               `json:"MediaType"`
	Manifest     ocispec.Descriptor   `json:"Manifest"`
	Layers       []ocispec.Descriptor `json:"Layers"`
	History      []ocispec.History    `json:"History,omitempty"`
}

// InspectRootFS lists the layers' diff ids.
type InspectRootFS struct {
	Type   string          `json:"Type"`
	Layers []digest.Digest `json:"Layers"`
}

// InspectImage describes the image a name or id refers to.
func (s *Service) InspectImage(nameOrID string) (*Inspect, error) {
	found, err := s.Find(nameOrID)
	if err != nil {
		return nil, err
	}
	first := found[0]
	md, m, err := s.Manifest(first.Target)
	if err != nil {
		return nil, err
	}
	c, err := s.Config(m)
	if err != nil {
		return nil, err
	}
	out := &Inspect{
		ID: m.Config.Digest.String(), Digest: first.Target.Digest.String(),
		Created: c.Created, Author: c.Author, Architecture: c.Architecture, Os: c.OS, Variant: c.Variant,
		Config: c.Config, RootFS: InspectRootFS{Type: c.RootFS.Type, Layers: c.RootFS.DiffIDs},
		Size: first.Size, MediaType: first.Target.MediaType, Manifest: md, Layers: m.Layers, History: c.History,
		RepoTags: []string{}, RepoDigests: []string{},
	}
	// Every name of the same image id.
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, sum := range all {
		if sum.ID != m.Config.Digest {
			continue
		}
		out.RepoTags = append(out.RepoTags, sum.Name)
		rd := sum.Ref.Domain() + "/" + sum.Ref.Repository() + "@" + sum.Target.Digest.String()
		if !seen[rd] {
			seen[rd] = true
			out.RepoDigests = append(out.RepoDigests, rd)
		}
	}
	return out, nil
}

// DiskUsage accounts the bytes on disk under the image store.
type DiskUsage struct {
	Images           int
	ImagesSize       int64 // blobs the named images refer to
	Reclaimable      int64 // what a collection (with partial downloads) would free
	Blobs            int64 // every committed blob
	BlobCount        int
	PartialDownloads int64 // ingests
	Snapshots        int64 // snapshot directories
	SnapshotCount    int
	Metadata         int64 // the bbolt file
}

// DiskUsage measures the store; every byte it holds is in one of the fields.
func (s *Service) DiskUsage(ctx context.Context, snapshotRoots []string) (DiskUsage, error) {
	var du DiskUsage
	imgs, err := s.DB.Images()
	if err != nil {
		return du, err
	}
	du.Images = len(imgs)
	blobs, ingests, err := s.Content.Usage()
	if err != nil {
		return du, err
	}
	du.Blobs, du.PartialDownloads = blobs, ingests
	if err := s.Content.Walk(func(content.Info) error { du.BlobCount++; return nil }); err != nil {
		return du, err
	}
	if s.Snapshots != nil {
		var keys []string
		if err := s.Snapshots.Walk(ctx, func(i snapshot.Info) error { keys = append(keys, i.Key); return nil }); err != nil {
			return du, err
		}
		du.SnapshotCount = len(keys)
		for _, k := range keys {
			u, err := s.Snapshots.Usage(ctx, k)
			if err != nil {
				return du, fmt.Errorf("usage of snapshot %s: %w", k, err)
			}
			du.Snapshots += u.Size
		}
	}
	if st, err := os.Stat(s.DB.Path()); err == nil {
		du.Metadata = st.Size()
	}
	rep, err := s.GC(ctx, GCOptions{DryRun: true, Ingests: true, SnapshotRoots: snapshotRoots})
	if err != nil {
		return du, err
	}
	du.Reclaimable = rep.BytesFreed
	du.ImagesSize = du.Blobs - rep.BlobBytes
	return du, nil
}
