// Package sysmem reads the memory available to the process: the machine's
// physical memory and the limit of its control group (cgroup v2
// memory.max, cgroup v1 memory.limit_in_bytes), so that default memory
// limits respect containers.
package sysmem

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Limit is a memory limit and where it comes from.
type Limit struct {
	// Bytes is the limit; zero when it is unknown.
	Bytes int64

	// Source names the limit, such as "physical memory (/proc/meminfo)"
	// or "cgroup v2 memory.max (/sys/fs/cgroup/memory.max)".
	Source string
}

// unlimited is the smallest value that the kernel reports for a cgroup
// without a limit: v1 reports a page-rounded 2⁶³−1.
const unlimited = 1 << 62

// System holds the files Available reads, below a root directory; "/" for
// the running system. It exists so that tests can supply their own tree.
type System struct {
	Root string
}

var (
	once   sync.Once
	cached Limit
	phys   Limit
	cg     Limit
)

func load() {
	once.Do(func() {
		s := System{Root: "/"}
		phys = s.Physical()
		cg = s.Cgroup()
		cached = smaller(phys, cg)
	})
}

// Available returns the smaller of the physical memory and the cgroup
// limit of the running process, with its source; Bytes is zero when
// neither is known. The result is read once and cached.
func Available() Limit { load(); return cached }

// Physical returns the machine's physical memory, cached.
func Physical() Limit { load(); return phys }

// Cgroup returns the cgroup memory limit of the running process, cached;
// Bytes is zero when there is none.
func Cgroup() Limit { load(); return cg }

// Available returns the smaller of s.Physical and s.Cgroup.
func (s System) Available() Limit { return smaller(s.Physical(), s.Cgroup()) }

func smaller(a, b Limit) Limit {
	switch {
	case a.Bytes <= 0:
		return b
	case b.Bytes > 0 && b.Bytes < a.Bytes:
		return b
	}
	return a
}

func (s System) path(p string) string { return filepath.Join(s.Root, filepath.FromSlash(p)) }

// Physical returns MemTotal of /proc/meminfo.
func (s System) Physical() Limit {
	f, err := os.Open(s.path("/proc/meminfo"))
	if err != nil {
		return Limit{}
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil || kb <= 0 || kb > 1<<53 {
				return Limit{}
			}
			return Limit{Bytes: kb * 1024, Source: "physical memory (/proc/meminfo)"}
		}
	}
	return Limit{}
}

// mount is a cgroup file system mount from /proc/self/mountinfo.
type mount struct {
	root, point string // the cgroup path mounted, and where
	v2          bool
	memory      bool // a v1 hierarchy with the memory controller
}

func (s System) mounts() []mount {
	b, err := os.ReadFile(s.path("/proc/self/mountinfo"))
	if err != nil {
		return nil
	}
	var ms []mount
	for _, line := range strings.Split(string(b), "\n") {
		// 35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 1 {
			continue
		}
		m := mount{root: unescape(f[3]), point: unescape(f[4])}
		switch g[0] {
		case "cgroup2":
			m.v2 = true
		case "cgroup":
			if len(g) >= 3 {
				for _, o := range strings.Split(g[2], ",") {
					m.memory = m.memory || o == "memory"
				}
			}
			if !m.memory {
				continue
			}
		default:
			continue
		}
		ms = append(ms, m)
	}
	return ms
}

// unescape undoes the octal escapes of mountinfo (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b bytes.Buffer
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Cgroup returns the tightest memory limit of the process's cgroup and its
// ancestors, v2 (memory.max) or v1 (memory.limit_in_bytes); Bytes is zero
// when there is none or it cannot be read.
func (s System) Cgroup() Limit {
	b, err := os.ReadFile(s.path("/proc/self/cgroup"))
	if err != nil {
		return Limit{}
	}
	ms := s.mounts()
	var best Limit
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		v2 := parts[0] == "0" && parts[1] == ""
		v1mem := false
		for _, c := range strings.Split(parts[1], ",") {
			v1mem = v1mem || c == "memory"
		}
		if !v2 && !v1mem {
			continue
		}
		file, version := "memory.limit_in_bytes", "v1"
		if v2 {
			file, version = "memory.max", "v2"
		}
		for _, m := range ms {
			if m.v2 != v2 {
				continue
			}
			if l := s.walk(m, parts[2], file, version); l.Bytes > 0 {
				best = smaller(best, l)
			}
		}
	}
	return best
}

// walk returns the tightest limit in file over the cgroup cg and its
// ancestors within the mount m. Inside a container the cgroup path may lie
// outside the mounted root; the mount point's own file is read then.
func (s System) walk(m mount, cg, file, version string) Limit {
	rel := path.Clean("/" + cg)
	if r := path.Clean(m.root); r != "/" {
		if rel == r {
			rel = "/"
		} else if strings.HasPrefix(rel, r+"/") {
			rel = strings.TrimPrefix(rel, r)
		}
	}
	var best Limit
	for dir := rel; ; dir = path.Dir(dir) {
		p := path.Join(m.point, dir, file)
		if l, ok := s.readLimit(p, version, file); ok {
			best = smaller(best, l)
		}
		if dir == "/" {
			break
		}
	}
	return best
}

func (s System) readLimit(p, version, file string) (Limit, bool) {
	b, err := os.ReadFile(s.path(p))
	if err != nil {
		return Limit{}, false
	}
	t := strings.TrimSpace(string(b))
	if t == "max" {
		return Limit{}, false
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v <= 0 || v >= unlimited {
		return Limit{}, false
	}
	return Limit{Bytes: v, Source: fmt.Sprintf("cgroup %s %s (%s)", version, file, p)}, true
}
