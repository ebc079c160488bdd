package image

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hull-runtime/hull/image/ref"
	"github.com/hull-runtime/hull/store"
)

// ErrNotFound is returned for an image name or id that matches nothing.
var ErrNotFound = errors.New("image not known")

// Summary is one named image, as `hull images` lists it.
type Summary struct {
	Name     string
	Ref      ref.Ref
	ID       digest.Digest // the config digest, as Docker's image id
	Target   ocispec.Descriptor
	Manifest digest.Digest
	Created  time.Time // from the image config
	Size     int64     // compressed layers, config and manifest
	Err      error     // the image's blobs could not be read
}

// summarize reads what a name needs for listing.
func (s *Service) summarize(img store.Image) Summary {
	sum := Summary{Name: img.Name, Target: img.Target}
	if r, err := ref.Parse(img.Name); err == nil {
		sum.Ref = r
	}
	md, m, err := s.Manifest(img.Target)
	if err != nil {
		sum.Err = err
		return sum
	}
	sum.Manifest = md.Digest
	sum.ID = m.Config.Digest
	sum.Size = md.Size + m.Config.Size
	for _, l := range m.Layers {
		sum.Size += l.Size
	}
	if c, err := s.Config(m); err == nil && c.Created != nil {
		sum.Created = *c.Created
	}
	return sum
}

// List returns every named image.
func (s *Service) List() ([]Summary, error) {
	imgs, err := s.DB.Images()
	if err != nil {
		return nil, err
	}
	out := make([]Summary, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, s.summarize(img))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// Find resolves what a user typed: a name (normalised as Docker does), a
// full or short image id (config digest), or a manifest digest. An id that
// several names share returns all of them.
func (s *Service) Find(nameOrID string) ([]Summary, error) {
	if r, err := ref.Parse(nameOrID); err == nil {
		img, err := s.DB.GetImage(r.String())
		if err == nil {
			return []Summary{s.summarize(img)}, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if r.Digest() != "" {
			// repo@digest names what a tag of repo was pulled as (its
			// RepoDigest), as Docker and the CRI resolve it.
			if found, err := s.findRepoDigest(r); err != nil || len(found) > 0 {
				return found, err
			}
		}
	}
	id := strings.TrimPrefix(nameOrID, "sha256:")
	if len(id) >= 4 && isHex(id) {
		all, err := s.List()
		if err != nil {
			return nil, err
		}
		var out []Summary
		for _, sum := range all {
			if strings.HasPrefix(sum.ID.Encoded(), id) || strings.HasPrefix(sum.Manifest.Encoded(), id) || strings.HasPrefix(sum.Target.Digest.Encoded(), id) {
				out = append(out, sum)
			}
		}
		if len(out) > 0 {
			ids := map[digest.Digest]bool{}
			for _, o := range out {
				ids[o.ID] = true
			}
			if len(ids) > 1 {
				return nil, fmt.Errorf("image id %q is ambiguous: it matches %d images; give more of it", nameOrID, len(ids))
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("%s: %w (see `hull images`)", nameOrID, ErrNotFound)
}

// findRepoDigest returns the images named in r's repository whose pulled
// manifest (or index) has r's digest.
func (s *Service) findRepoDigest(r ref.Ref) ([]Summary, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	var out []Summary
	for _, sum := range all {
		if sum.Err == nil && sum.Ref.Domain() == r.Domain() && sum.Ref.Repository() == r.Repository() &&
			(sum.Target.Digest.String() == r.Digest() || sum.Manifest.String() == r.Digest()) {
			out = append(out, sum)
		}
	}
	return out, nil
}

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Tag gives the image src the extra name dst.
func (s *Service) Tag(src, dst string) (string, error) {
	found, err := s.Find(src)
	if err != nil {
		return "", err
	}
	r, err := ref.Parse(dst)
	if err != nil {
		return "", err
	}
	if r.Digest() != "" {
		return "", fmt.Errorf("tag %s: a tag cannot contain a digest", dst)
	}
	if err := s.DB.PutImage(store.Image{Name: r.String(), Target: found[0].Target}); err != nil {
		return "", err
	}
	return r.String(), nil
}

// RemoveResult says what Remove did.
type RemoveResult struct {
	Untagged []string
	GC       GCReport
}

// Remove deletes image names (or every name of an image id; with several,
// force is needed), then collects what no name holds any more. inUse
// reports names or ids that containers use; those are refused unless force.
func (s *Service) Remove(ctx context.Context, args []string, force bool, inUse func(Summary) bool) (RemoveResult, error) {
	var res RemoveResult
	var errs []error
	for _, a := range args {
		found, err := s.Find(a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		byName := len(found) == 1 && found[0].Name != "" && matchesName(a, found[0].Name)
		if !byName && len(found) > 1 && !force {
			errs = append(errs, fmt.Errorf("image %s has %d names (%s): remove them by name, or use --force", a, len(found), names(found)))
			continue
		}
		for _, f := range found {
			if inUse != nil && inUse(f) && !force {
				errs = append(errs, fmt.Errorf("image %s is used by a container: remove the container first, or use --force", f.Name))
				continue
			}
			if err := s.DB.DeleteImage(f.Name); err != nil {
				errs = append(errs, err)
				continue
			}
			res.Untagged = append(res.Untagged, f.Name)
		}
	}
	if len(res.Untagged) > 0 {
		rep, err := s.GC(ctx, GCOptions{})
		res.GC = rep
		if err != nil {
			errs = append(errs, err)
		}
	}
	return res, errors.Join(errs...)
}

func matchesName(arg, name string) bool {
	r, err := ref.Parse(arg)
	return err == nil && r.String() == name
}

func names(ss []Summary) string {
	var n []string
	for _, s := range ss {
		n = append(n, s.Name)
	}
	return strings.Join(n, ", ")
}
