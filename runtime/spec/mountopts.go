package spec

import (
	"strings"

	"golang.org/x/sys/unix"
)

// ParsedMountOptions is the result of parsing a mount's options the way runc
// does: mount(2) flags to set and to clear, propagation changes to apply
// after the mount, recursive mount_setattr(2) attributes, and the remaining
// filesystem-specific options as the mount(2) data string.
type ParsedMountOptions struct {
	// Flags are the MS_* flags to pass to mount(2) (MS_BIND|MS_REC for rbind).
	Flags uintptr
	// ClearFlags are the MS_* flags an option asked to clear (rw clears
	// MS_RDONLY, suid clears MS_NOSUID, ...). They matter when remounting a
	// bind mount whose source has them set.
	ClearFlags uintptr
	// Propagation lists the propagation changes in option order, each an
	// MS_PRIVATE, MS_SLAVE, MS_SHARED or MS_UNBINDABLE value, or-ed with
	// MS_REC for the r-prefixed forms.
	Propagation []uintptr
	// RecAttrSet and RecAttrClr are MOUNT_ATTR_* values for
	// mount_setattr(2) with AT_RECURSIVE (rro, rnosuid, ...). As
	// mount_setattr(2) requires, setting an access-time mode also puts
	// MOUNT_ATTR__ATIME in RecAttrClr.
	RecAttrSet, RecAttrClr uint64
	// Data holds the options this table does not know, joined by ",",
	// for the filesystem (mode=755, size=65536k, ...).
	Data string
	// Bind is set by "bind" or "rbind"; Recursive additionally by "rbind".
	Bind, Recursive bool
	// Idmap is set by "idmap" or "ridmap"; RecursiveIdmap by "ridmap".
	// When both appear the last one decides RecursiveIdmap.
	Idmap, RecursiveIdmap bool
	// TmpCopyUp is set by "tmpcopyup": copy the lower directory's content
	// into a new tmpfs.
	TmpCopyUp bool
}

// optKind says which part of ParsedMountOptions a mount option feeds.
type optKind uint8

const (
	optFlag        optKind = iota // an MS_* flag, set or cleared
	optPropagation                // a propagation type for a later mount(2)
	optRecAttr                    // a MOUNT_ATTR_* for recursive mount_setattr(2)
	optTmpCopyUp                  // hull/runc extension: tmpcopyup
	optIdmap                      // idmap
	optRidmap                     // ridmap
	optNoop                       // accepted and ignored (defaults)
)

type mountOpt struct {
	kind  optKind
	clear bool
	flag  uint64
}

// mountOptions is the table of options the runtime interprets itself; any
// other option is filesystem data. It follows runc's specconv tables.
var mountOptions = map[string]mountOpt{
	"defaults": {kind: optNoop},

	"ro":            {kind: optFlag, flag: unix.MS_RDONLY},
	"rw":            {kind: optFlag, clear: true, flag: unix.MS_RDONLY},
	"suid":          {kind: optFlag, clear: true, flag: unix.MS_NOSUID},
	"nosuid":        {kind: optFlag, flag: unix.MS_NOSUID},
	"dev":           {kind: optFlag, clear: true, flag: unix.MS_NODEV},
	"nodev":         {kind: optFlag, flag: unix.MS_NODEV},
	"exec":          {kind: optFlag, clear: true, flag: unix.MS_NOEXEC},
	"noexec":        {kind: optFlag, flag: unix.MS_NOEXEC},
	"sync":          {kind: optFlag, flag: unix.MS_SYNCHRONOUS},
	"async":         {kind: optFlag, clear: true, flag: unix.MS_SYNCHRONOUS},
	"dirsync":       {kind: optFlag, flag: unix.MS_DIRSYNC},
	"remount":       {kind: optFlag, flag: unix.MS_REMOUNT},
	"mand":          {kind: optFlag, flag: unix.MS_MANDLOCK},
	"nomand":        {kind: optFlag, clear: true, flag: unix.MS_MANDLOCK},
	"atime":         {kind: optFlag, clear: true, flag: unix.MS_NOATIME},
	"noatime":       {kind: optFlag, flag: unix.MS_NOATIME},
	"diratime":      {kind: optFlag, clear: true, flag: unix.MS_NODIRATIME},
	"nodiratime":    {kind: optFlag, flag: unix.MS_NODIRATIME},
	"bind":          {kind: optFlag, flag: unix.MS_BIND},
	"rbind":         {kind: optFlag, flag: unix.MS_BIND | unix.MS_REC},
	"relatime":      {kind: optFlag, flag: unix.MS_RELATIME},
	"norelatime":    {kind: optFlag, clear: true, flag: unix.MS_RELATIME},
	"strictatime":   {kind: optFlag, flag: unix.MS_STRICTATIME},
	"nostrictatime": {kind: optFlag, clear: true, flag: unix.MS_STRICTATIME},
	"lazytime":      {kind: optFlag, flag: unix.MS_LAZYTIME},
	"nolazytime":    {kind: optFlag, clear: true, flag: unix.MS_LAZYTIME},
	"silent":        {kind: optFlag, flag: unix.MS_SILENT},
	"loud":          {kind: optFlag, clear: true, flag: unix.MS_SILENT},
	"iversion":      {kind: optFlag, flag: unix.MS_I_VERSION},
	"noiversion":    {kind: optFlag, clear: true, flag: unix.MS_I_VERSION},
	"nosymfollow":   {kind: optFlag, flag: unix.MS_NOSYMFOLLOW}, // Linux 5.10
	"symfollow":     {kind: optFlag, clear: true, flag: unix.MS_NOSYMFOLLOW},

	"private":     {kind: optPropagation, flag: unix.MS_PRIVATE},
	"rprivate":    {kind: optPropagation, flag: unix.MS_PRIVATE | unix.MS_REC},
	"shared":      {kind: optPropagation, flag: unix.MS_SHARED},
	"rshared":     {kind: optPropagation, flag: unix.MS_SHARED | unix.MS_REC},
	"slave":       {kind: optPropagation, flag: unix.MS_SLAVE},
	"rslave":      {kind: optPropagation, flag: unix.MS_SLAVE | unix.MS_REC},
	"unbindable":  {kind: optPropagation, flag: unix.MS_UNBINDABLE},
	"runbindable": {kind: optPropagation, flag: unix.MS_UNBINDABLE | unix.MS_REC},

	"rro":            {kind: optRecAttr, flag: unix.MOUNT_ATTR_RDONLY},
	"rrw":            {kind: optRecAttr, clear: true, flag: unix.MOUNT_ATTR_RDONLY},
	"rnosuid":        {kind: optRecAttr, flag: unix.MOUNT_ATTR_NOSUID},
	"rsuid":          {kind: optRecAttr, clear: true, flag: unix.MOUNT_ATTR_NOSUID},
	"rnodev":         {kind: optRecAttr, flag: unix.MOUNT_ATTR_NODEV},
	"rdev":           {kind: optRecAttr, clear: true, flag: unix.MOUNT_ATTR_NODEV},
	"rnoexec":        {kind: optRecAttr, flag: unix.MOUNT_ATTR_NOEXEC},
	"rexec":          {kind: optRecAttr, clear: true, flag: unix.MOUNT_ATTR_NOEXEC},
	"rnodiratime":    {kind: optRecAttr, flag: unix.MOUNT_ATTR_NODIRATIME},
	"rdiratime":      {kind: optRecAttr, clear: true, flag: unix.MOUNT_ATTR_NODIRATIME},
	"rrelatime":      {kind: optRecAttr, flag: unix.MOUNT_ATTR_RELATIME},
	"rnorelatime":    {kind: optRecAttr, clear: true, flag: unix.MOUNT_ATTR_RELATIME},
	"rnoatime":       {kind: optRecAttr, flag: unix.MOUNT_ATTR_NOATIME},
	"ratime":         {kind: optRecAttr, clear: true, flag: unix.MOUNT_ATTR_NOATIME},
	"rstrictatime":   {kind: optRecAttr, flag: unix.MOUNT_ATTR_STRICTATIME},
	"rnostrictatime": {kind: optRecAttr, clear: true, flag: unix.MOUNT_ATTR_STRICTATIME},
	"rnosymfollow":   {kind: optRecAttr, flag: unix.MOUNT_ATTR_NOSYMFOLLOW}, // Linux 5.14
	"rsymfollow":     {kind: optRecAttr, clear: true, flag: unix.MOUNT_ATTR_NOSYMFOLLOW},

	"tmpcopyup": {kind: optTmpCopyUp},
	"idmap":     {kind: optIdmap},
	"ridmap":    {kind: optRidmap},
}

// ParseMountOptions splits a mount's options into mount(2) flags,
// propagation changes, recursive mount attributes, runtime extensions and
// filesystem data, with runc's semantics: options apply in order, so a later
// "rw" undoes an earlier "ro"; an option not in the table goes to Data
// unchanged.
func ParseMountOptions(opts []string) ParsedMountOptions {
	var (
		p    ParsedMountOptions
		data []string
	)
	for _, o := range opts {
		opt, ok := mountOptions[o]
		if !ok {
			data = append(data, o)
			continue
		}
		switch opt.kind {
		case optFlag:
			f := uintptr(opt.flag)
			if opt.clear {
				p.Flags &^= f
				p.ClearFlags |= f
			} else {
				p.Flags |= f
				p.ClearFlags &^= f
			}
		case optPropagation:
			p.Propagation = append(p.Propagation, uintptr(opt.flag))
		case optRecAttr:
			if opt.clear {
				p.RecAttrClr |= opt.flag
				p.RecAttrSet &^= opt.flag
			} else {
				p.RecAttrSet |= opt.flag
				p.RecAttrClr &^= opt.flag
				if opt.flag&unix.MOUNT_ATTR__ATIME == opt.flag {
					// mount_setattr(2): an access-time mode in attr_set
					// needs MOUNT_ATTR__ATIME in attr_clr.
					p.RecAttrClr |= unix.MOUNT_ATTR__ATIME
				}
			}
		case optTmpCopyUp:
			p.TmpCopyUp = true
		case optIdmap:
			p.Idmap, p.RecursiveIdmap = true, false
		case optRidmap:
			p.Idmap, p.RecursiveIdmap = true, true
		case optNoop:
		}
	}
	p.Data = strings.Join(data, ",")
	p.Bind = p.Flags&unix.MS_BIND != 0
	p.Recursive = p.Bind && p.Flags&unix.MS_REC != 0
	return p
}

// knownMountOptions returns every option ParseMountOptions interprets, sorted.
func knownMountOptions() []string {
	return sortedKeys(mountOptions)
}
