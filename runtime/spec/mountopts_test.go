package spec

import (
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMountOptions(t *testing.T) {
	const atime = unix.MOUNT_ATTR__ATIME
	tests := []struct {
		name string
		opts []string
		want ParsedMountOptions
	}{
		{"no options", nil, ParsedMountOptions{}},
		{"defaults is a no-op", []string{"defaults"}, ParsedMountOptions{}},
		{"ro sets MS_RDONLY", []string{"ro"}, ParsedMountOptions{Flags: unix.MS_RDONLY}},
		{"rw clears MS_RDONLY", []string{"rw"}, ParsedMountOptions{ClearFlags: unix.MS_RDONLY}},
		{"later rw undoes ro", []string{"ro", "rw"}, ParsedMountOptions{ClearFlags: unix.MS_RDONLY}},
		{"later ro undoes rw", []string{"rw", "ro"}, ParsedMountOptions{Flags: unix.MS_RDONLY}},
		{"suid and nosuid", []string{"suid"}, ParsedMountOptions{ClearFlags: unix.MS_NOSUID}},
		{"nosuid", []string{"nosuid"}, ParsedMountOptions{Flags: unix.MS_NOSUID}},
		{"dev", []string{"dev"}, ParsedMountOptions{ClearFlags: unix.MS_NODEV}},
		{"nodev", []string{"nodev"}, ParsedMountOptions{Flags: unix.MS_NODEV}},
		{"exec", []string{"exec"}, ParsedMountOptions{ClearFlags: unix.MS_NOEXEC}},
		{"noexec", []string{"noexec"}, ParsedMountOptions{Flags: unix.MS_NOEXEC}},
		{"sync", []string{"sync"}, ParsedMountOptions{Flags: unix.MS_SYNCHRONOUS}},
		{"async", []string{"async"}, ParsedMountOptions{ClearFlags: unix.MS_SYNCHRONOUS}},
		{"dirsync", []string{"dirsync"}, ParsedMountOptions{Flags: unix.MS_DIRSYNC}},
		{"remount", []string{"remount"}, ParsedMountOptions{Flags: unix.MS_REMOUNT}},
		{"mand", []string{"mand"}, ParsedMountOptions{Flags: unix.MS_MANDLOCK}},
		{"nomand", []string{"nomand"}, ParsedMountOptions{ClearFlags: unix.MS_MANDLOCK}},
		{"atime", []string{"atime"}, ParsedMountOptions{ClearFlags: unix.MS_NOATIME}},
		{"noatime", []string{"noatime"}, ParsedMountOptions{Flags: unix.MS_NOATIME}},
		{"diratime", []string{"diratime"}, ParsedMountOptions{ClearFlags: unix.MS_NODIRATIME}},
		{"nodiratime", []string{"nodiratime"}, ParsedMountOptions{Flags: unix.MS_NODIRATIME}},
		{"relatime", []string{"relatime"}, ParsedMountOptions{Flags: unix.MS_RELATIME}},
		{"norelatime", []string{"norelatime"}, ParsedMountOptions{ClearFlags: unix.MS_RELATIME}},
		{"strictatime", []string{"strictatime"}, ParsedMountOptions{Flags: unix.MS_STRICTATIME}},
		{"nostrictatime", []string{"nostrictatime"}, ParsedMountOptions{ClearFlags: unix.MS_STRICTATIME}},
		{"lazytime", []string{"lazytime"}, ParsedMountOptions{Flags: unix.MS_LAZYTIME}},
		{"nolazytime", []string{"nolazytime"}, ParsedMountOptions{ClearFlags: unix.MS_LAZYTIME}},
		{"silent", []string{"silent"}, ParsedMountOptions{Flags: unix.MS_SILENT}},
		{"loud", []string{"loud"}, ParsedMountOptions{ClearFlags: unix.MS_SILENT}},
		{"iversion", []string{"iversion"}, ParsedMountOptions{Flags: unix.MS_I_VERSION}},
		{"noiversion", []string{"noiversion"}, ParsedMountOptions{ClearFlags: unix.MS_I_VERSION}},
		{"nosymfollow", []string{"nosymfollow"}, ParsedMountOptions{Flags: unix.MS_NOSYMFOLLOW}},
		{"symfollow", []string{"symfollow"}, ParsedMountOptions{ClearFlags: unix.MS_NOSYMFOLLOW}},

		{"bind", []string{"bind"}, ParsedMountOptions{Flags: unix.MS_BIND, Bind: true}},
		{"rbind", []string{"rbind"}, ParsedMountOptions{Flags: unix.MS_BIND | unix.MS_REC, Bind: true, Recursive: true}},
		{"rbind with read-only and propagation", []string{"rbind", "ro", "rprivate"}, ParsedMountOptions{
			Flags: unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY, Bind: true, Recursive: true,
			Propagation: []uintptr{unix.MS_PRIVATE | unix.MS_REC},
		}},

		{"propagation in option order", []string{"shared", "rslave", "private", "runbindable", "rshared", "slave", "rprivate", "unbindable"},
			ParsedMountOptions{Propagation: []uintptr{
				unix.MS_SHARED, unix.MS_SLAVE | unix.MS_REC, unix.MS_PRIVATE, unix.MS_UNBINDABLE | unix.MS_REC,
				unix.MS_SHARED | unix.MS_REC, unix.MS_SLAVE, unix.MS_PRIVATE | unix.MS_REC, unix.MS_UNBINDABLE,
			}}},

		{"rro", []string{"rro"}, ParsedMountOptions{RecAttrSet: unix.MOUNT_ATTR_RDONLY}},
		{"rrw", []string{"rrw"}, ParsedMountOptions{RecAttrClr: unix.MOUNT_ATTR_RDONLY}},
		{"rro then rrw", []string{"rro", "rrw"}, ParsedMountOptions{RecAttrClr: unix.MOUNT_ATTR_RDONLY}},
		{"rnosuid rnodev rnoexec", []string{"rnosuid", "rnodev", "rnoexec"}, ParsedMountOptions{
			RecAttrSet: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC,
		}},
		{"rsuid rdev rexec", []string{"rsuid", "rdev", "rexec"}, ParsedMountOptions{
			RecAttrClr: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC,
		}},
		{"rnoatime also clears the atime field", []string{"rnoatime"}, ParsedMountOptions{RecAttrSet: unix.MOUNT_ATTR_NOATIME, RecAttrClr: atime}},
		{"rstrictatime", []string{"rstrictatime"}, ParsedMountOptions{RecAttrSet: unix.MOUNT_ATTR_STRICTATIME, RecAttrClr: atime}},
		{"rrelatime sets the zero mode", []string{"rrelatime"}, ParsedMountOptions{RecAttrSet: unix.MOUNT_ATTR_RELATIME, RecAttrClr: atime}},
		{"ratime", []string{"ratime"}, ParsedMountOptions{RecAttrClr: unix.MOUNT_ATTR_NOATIME}},
		{"rnorelatime", []string{"rnorelatime"}, ParsedMountOptions{RecAttrClr: unix.MOUNT_ATTR_RELATIME}},
		{"rnostrictatime", []string{"rnostrictatime"}, ParsedMountOptions{RecAttrClr: unix.MOUNT_ATTR_STRICTATIME}},
		{"rnodiratime is not an atime mode", []string{"rnodiratime"}, ParsedMountOptions{RecAttrSet: unix.MOUNT_ATTR_NODIRATIME}},
		{"rdiratime", []string{"rdiratime"}, ParsedMountOptions{RecAttrClr: unix.MOUNT_ATTR_NODIRATIME}},
		{"rnosymfollow", []string{"rnosymfollow"}, ParsedMountOptions{RecAttrSet: unix.MOUNT_ATTR_NOSYMFOLLOW}},
		{"rsymfollow", []string{"rsymfollow"}, ParsedMountOptions{RecAttrClr: unix.MOUNT_ATTR_NOSYMFOLLOW}},

		{"idmap", []string{"bind", "idmap"}, ParsedMountOptions{Flags: unix.MS_BIND, Bind: true, Idmap: true}},
		{"ridmap", []string{"rbind", "ridmap"}, ParsedMountOptions{
			Flags: unix.MS_BIND | unix.MS_REC, Bind: true, Recursive: true, Idmap: true, RecursiveIdmap: true,
		}},
		{"last of ridmap and idmap wins", []string{"ridmap", "idmap"}, ParsedMountOptions{Idmap: true}},
		{"tmpcopyup", []string{"tmpcopyup", "mode=755"}, ParsedMountOptions{TmpCopyUp: true, Data: "mode=755"}},

		{"unknown options become data in order", []string{"nosuid", "mode=755", "size=65536k", "newinstance", "noexec"},
			ParsedMountOptions{Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: "mode=755,size=65536k,newinstance"}},
		{"options are case sensitive", []string{"RO"}, ParsedMountOptions{Data: "RO"}},
		{"acl is filesystem data, not MS_POSIXACL", []string{"acl"}, ParsedMountOptions{Data: "acl"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseMountOptions(tc.opts)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseMountOptions(%q) =\n%+v\nwant\n%+v", tc.opts, got, tc.want)
			}
		})
	}
}

func TestEveryKnownMountOptionIsInterpreted(t *testing.T) {
	for _, o := range knownMountOptions() {
		if got := ParseMountOptions([]string{o}); got.Data != "" {
			t.Errorf("option %q went to data", o)
		}
	}
}

// TestMountOptionTableCoversTheDocumentedOptions pins the list of options
// hull-runtime interprets rather than passing to the filesystem.
func TestMountOptionTableCoversTheDocumentedOptions(t *testing.T) {
	want := []string{
		"ro", "rw", "suid", "nosuid", "dev", "nodev", "exec", "noexec", "sync", "async", "dirsync",
		"remount", "mand", "nomand", "atime", "noatime", "diratime", "nodiratime", "bind", "rbind",
		"relatime", "norelatime", "strictatime", "nostrictatime", "lazytime", "nolazytime",
		"private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable",
		"silent", "loud", "iversion", "noiversion",
		"rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec", "rexec", "rnoatime", "ratime",
		"rrelatime", "rnorelatime", "rnodiratime", "rdiratime", "rstrictatime", "rnostrictatime",
		"rnosymfollow", "rsymfollow", "nosymfollow", "symfollow",
		"idmap", "ridmap", "tmpcopyup", "defaults",
	}
	if len(want) != len(mountOptions) {
		t.Errorf("table has %d options, the list %d", len(mountOptions), len(want))
	}
	for _, o := range want {
		if _, ok := mountOptions[o]; !ok {
			t.Errorf("option %q missing from the table", o)
		}
	}
}
