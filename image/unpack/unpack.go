// Package unpack applies OCI/Docker image layers (tar streams, possibly gzip-
// or zstd-compressed) to a directory: the layer applier between the content
// store and the snapshotter.
//
// Every path in a layer is hostile. Entry names, hardlink targets and whiteouts
// are resolved inside the target directory by the kernel (openat2 with
// RESOLVE_IN_ROOT, or filepath-securejoin's emulation of it on kernels without
// openat2), and every change is made with *at syscalls on directory fds, never
// on a path string that the kernel would walk again:
//
//   - Names are cleaned lexically first: an absolute name is relative to the
//     root (as Docker does), and a name or hardlink target whose ".." climbs
//     above the root is an error.
//   - Parent directories are resolved in the root. A symlink from the layer (or
//     a lower layer) used as a parent is followed inside the root, as
//     containerd and Docker do for real images (usrmerge's lib -> usr/lib), but
//     it can never leave the root: "s -> /etc" then "s/passwd" writes
//     DIR/etc/passwd, and "s -> ../../.." then "s/x" writes DIR/x.
//   - The last component of an entry is never followed: files are created with
//     O_EXCL|O_NOFOLLOW, an existing entry is unlinked first (so a hardlink in a
//     lower layer is not written through), ownership, modes, xattrs and times
//     go to the fd of the new file or directory, or to (parent fd, name) with
//     AT_SYMLINK_NOFOLLOW for symlinks, devices and fifos. Hardlinks are made
//     with linkat without AT_SYMLINK_FOLLOW, so a hardlink to a symlink links
//     the symlink itself.
//
// Apply holds one fd per recently used directory so that most entries cost no
// path walk at all; the cache is dropped whenever a directory or symlink is
// removed or replaced, the only changes that can make a cached fd stale.
package unpack

// Options control how Apply treats whiteouts and existing entries.
type Options struct {
	// OverlayWhiteouts: dir is an (empty) overlayfs upper dir for this layer
	// alone: a whiteout ".wh.NAME" becomes a 0:0 character device NAME,
	// ".wh..wh..opq" sets the xattr trusted.overlay.opaque=y on its directory.
	// Otherwise dir already holds the parent layers' content (a native/copy
	// snapshot) and whiteouts delete NAME / empty the directory of what the
	// earlier layers put there.
	OverlayWhiteouts bool

	// NoWhiteouts: the stream is not an image layer but plain files (`hull
	// cp`), so ".wh." names carry no meaning and are created as the entries
	// they are; a user's file named ".wh.x" must not delete x. It overrides
	// OverlayWhiteouts.
	NoWhiteouts bool

	// NoOverwriteDirNonDir: an entry never replaces an existing entry of the
	// other kind, a directory by a non-directory or the reverse; Apply fails
	// instead. Layers replace freely (that is how they change a path's
	// type), but a copy into a directory the user has data in must not
	// delete a whole tree because the source has a file of that name.
	NoOverwriteDirNonDir bool
}

// Stats counts what Apply did.
type Stats struct {
	// Entries is the number of tar entries read, whiteouts included.
	Entries int
	// Bytes is the number of bytes of regular-file content written.
	Bytes int64
	// ImplicitDirs are the directories (relative, clean, sorted) created
	// because an entry's parent was missing and the layer never listed it:
	// made 0755 and owned by root. In overlay mode such a directory hides
	// the metadata of the lower layers' directory at that path (or a lower
	// symlink there), so the caller fixes it up or applies the layer another
	// way.
	ImplicitDirs []string
}
