package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ParseMountFlag translates Docker's --mount (type=bind|volume|tmpfs,
// source=, target=, readonly, bind-propagation=, tmpfs-size=, tmpfs-mode=)
// into the -v or --tmpfs value it means: exactly one of volume and tmpfs is
// set. Unlike -v, a bind source must exist (Docker's rule: --mount never
// creates it).
func ParseMountFlag(s string) (volume, tmpfs string, err error) {
	typ, src, dst := "volume", "", ""
	ro := false
	var opts []string
	size, mode := "", ""
	for _, field := range strings.Split(s, ",") {
		k, v, hasV := strings.Cut(field, "=")
		switch strings.ToLower(k) {
		case "type":
			typ = v
		case "source", "src":
			src = v
		case "target", "destination", "dst":
			dst = v
		case "readonly", "ro":
			if hasV {
				b, perr := strconv.ParseBool(v)
				if perr != nil {
					return "", "", fmt.Errorf("--mount %q: readonly=%q is not a boolean", s, v)
				}
				ro = b
			} else {
				ro = true
			}
		case "bind-propagation":
			switch v {
			case "rprivate", "private", "rshared", "shared", "rslave", "slave":
				opts = append(opts, v)
			default:
				return "", "", fmt.Errorf("--mount %q: bind-propagation %q (rprivate, private, rshared, shared, rslave, slave)", s, v)
			}
		case "volume-nocopy":
			opts = append(opts, "nocopy")
		case "tmpfs-size":
			size = v
		case "tmpfs-mode":
			mode = v
		case "consistency", "bind-nonrecursive":
			// Accepted as Docker does on Linux: no effect.
		default:
			return "", "", fmt.Errorf("--mount %q: unknown key %q", s, k)
		}
	}
	if dst == "" || !filepath.IsAbs(dst) {
		return "", "", fmt.Errorf("--mount %q: target must be an absolute path", s)
	}
	switch typ {
	case "tmpfs":
		if src != "" {
			return "", "", fmt.Errorf("--mount %q: a tmpfs has no source", s)
		}
		t := dst
		var o []string
		if ro {
			o = append(o, "ro")
		}
		if size != "" {
			o = append(o, "size="+size)
		}
		if mode != "" {
			o = append(o, "mode="+mode)
		}
		if len(o) > 0 {
			t += ":" + strings.Join(o, ",")
		}
		return "", t, nil
	case "bind":
		if src == "" || !filepath.IsAbs(src) {
			return "", "", fmt.Errorf("--mount %q: a bind needs an absolute source path", s)
		}
		if _, err := os.Stat(src); err != nil {
			return "", "", fmt.Errorf("--mount %q: bind source path does not exist: %s", s, src)
		}
	case "volume":
		if strings.ContainsRune(src, '/') {
			return "", "", fmt.Errorf("--mount %q: a volume's source is a volume name, not a path (type=bind for a host path)", s)
		}
	default:
		return "", "", fmt.Errorf("--mount %q: type %q (bind, volume or tmpfs)", s, typ)
	}
	if size != "" || mode != "" {
		return "", "", fmt.Errorf("--mount %q: tmpfs options on a %s mount", s, typ)
	}
	if ro {
		opts = append([]string{"ro"}, opts...)
	}
	v := dst
	if src != "" {
		v = src + ":" + dst
	}
	if len(opts) > 0 {
		if src == "" {
			// -v's one-field form takes no options: name the volume's
			// lack of a source explicitly with an empty source.
			return "", "", fmt.Errorf("--mount %q: options on an anonymous volume are not supported; give it a source name", s)
		}
		v += ":" + strings.Join(opts, ",")
	}
	return v, "", nil
}
