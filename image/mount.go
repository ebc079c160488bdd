package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/moby/sys/mountinfo"

	"github.com/hull-runtime/hull/image/snapshot"
)

// mountKey names the read-only view MountImage creates for an image id.
func mountKey(id string) string { return "mount-" + id }

// MountImage mounts the image's root filesystem read-only under
// runroot/image-mounts/<id> (as `podman image mount`) and returns the path.
func (s *Service) MountImage(ctx context.Context, nameOrID, runroot string) (string, error) {
	found, err := s.Find(nameOrID)
	if err != nil {
		return "", err
	}
	sum := found[0]
	u, err := s.DB.GetUnpacked(s.SnapshotterName, sum.Manifest)
	if err != nil {
		return "", fmt.Errorf("image %s is not unpacked by the %s snapshotter: %w", nameOrID, s.SnapshotterName, err)
	}
	id := sum.ID.Encoded()
	dir := filepath.Join(runroot, "image-mounts", id)
	if ok, _ := mountinfo.Mounted(dir); ok {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("mount image %s: %w", nameOrID, err)
	}
	top := ""
	if n := len(u.ChainIDs); n > 0 {
		top = u.ChainIDs[n-1]
	}
	key := mountKey(id)
	mounts, err := s.Snapshots.View(ctx, key, top)
	if errors.Is(err, snapshot.ErrExist) {
		mounts, err = s.Snapshots.Mounts(ctx, key)
	}
	if err != nil {
		return "", fmt.Errorf("mount image %s: %w", nameOrID, err)
	}
	if err := snapshot.MountAll(mounts, dir); err != nil {
		_ = s.Snapshots.Remove(ctx, key)
		return "", fmt.Errorf("mount image %s: %w", nameOrID, err)
	}
	return dir, nil
}

// UnmountImage undoes MountImage.
func (s *Service) UnmountImage(ctx context.Context, nameOrID, runroot string) error {
	found, err := s.Find(nameOrID)
	if err != nil {
		return err
	}
	id := found[0].ID.Encoded()
	dir := filepath.Join(runroot, "image-mounts", id)
	if ok, _ := mountinfo.Mounted(dir); ok {
		if err := snapshot.UnmountAll(dir); err != nil {
			return fmt.Errorf("unmount image %s: %w", nameOrID, err)
		}
	}
	_ = os.Remove(dir)
	if err := s.Snapshots.Remove(ctx, mountKey(id)); err != nil && !errors.Is(err, snapshot.ErrNotExist) {
		return fmt.Errorf("unmount image %s: %w", nameOrID, err)
	}
	return nil
}

// MountedViews are the snapshots of mounted images, which a collection keeps.
func (s *Service) MountedViews(ctx context.Context) ([]string, error) {
	var keys []string
	err := s.Snapshots.Walk(ctx, func(i snapshot.Info) error {
		if i.Kind == snapshot.KindView && len(i.Key) > len("mount-") && i.Key[:len("mount-")] == "mount-" {
			keys = append(keys, i.Key)
		}
		return nil
	})
	return keys, err
}
