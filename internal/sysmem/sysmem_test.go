package sysmem

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tree writes the files of a fake system under a temporary root.
func tree(t *testing.T, files map[string]string) System {
	t.Helper()
	root := t.TempDir()
	for p, body := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return System{Root: root}
}

const meminfo = "MemTotal:       24684084 kB\nMemFree:  100 kB\n"

func TestCgroupV2(t *testing.T) {
	// A 1 GiB container: the repro of the guard taking half of the
	// machine's 23.5 GiB.
	s := tree(t, map[string]string{
		"/proc/meminfo":                     meminfo,
		"/proc/self/cgroup":                 "0::/box/job\n",
		"/proc/self/mountinfo":              "41 31 0:38 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n",
		"/sys/fs/cgroup/box/memory.max":     "1073741824\n",
		"/sys/fs/cgroup/box/job/memory.max": "max\n",
	})
	l := s.Available()
	if l.Bytes != 1<<30 || !strings.Contains(l.Source, "cgroup v2 memory.max") || !strings.Contains(l.Source, "/sys/fs/cgroup/box/memory.max") {
		t.Errorf("Available = %+v, want 1 GiB from /sys/fs/cgroup/box/memory.max", l)
	}
	if p := s.Physical(); p.Bytes != 24684084*1024 {
		t.Errorf("Physical = %+v", p)
	}
}

func TestCgroupV1(t *testing.T) {
	// The container's cgroup path lies outside the mounted root, as here.
	s := tree(t, map[string]string{
		"/proc/meminfo":                               meminfo,
		"/proc/self/cgroup":                           "5:devices:/\n4:memory:/process_api/9d3a\n0::/\n",
		"/proc/self/mountinfo":                        "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n36 31 0:33 / /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices\n",
		"/sys/fs/cgroup/memory/memory.limit_in_bytes": "536870912\n",
	})
	if l := s.Available(); l.Bytes != 512<<20 || !strings.Contains(l.Source, "cgroup v1 memory.limit_in_bytes") {
		t.Errorf("Available = %+v, want 512 MiB from cgroup v1", l)
	}
}

func TestNoLimit(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"v1 unlimited": {
			"/proc/self/cgroup":                           "4:memory:/\n",
			"/proc/self/mountinfo":                        "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
			"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
		},
		"v2 max": {
			"/proc/self/cgroup":         "0::/\n",
			"/proc/self/mountinfo":      "41 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
			"/sys/fs/cgroup/memory.max": "max\n",
		},
		"garbage": {
			"/proc/self/cgroup":         "0::/\n",
			"/proc/self/mountinfo":      "41 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
			"/sys/fs/cgroup/memory.max": "-5\n",
		},
		"nothing": {},
	} {
		files["/proc/meminfo"] = meminfo
		s := tree(t, files)
		if c := s.Cgroup(); c.Bytes != 0 {
			t.Errorf("%s: Cgroup = %+v, want none", name, c)
		}
		if l := s.Available(); l.Bytes != 24684084*1024 || !strings.Contains(l.Source, "physical") {
			t.Errorf("%s: Available = %+v, want physical memory", name, l)
		}
	}
	// A cgroup limit above physical memory leaves physical memory.
	s := tree(t, map[string]string{
		"/proc/meminfo":             meminfo,
		"/proc/self/cgroup":         "0::/\n",
		"/proc/self/mountinfo":      "41 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
		"/sys/fs/cgroup/memory.max": fmt.Sprint(int64(64) << 30),
	})
	if l := s.Available(); !strings.Contains(l.Source, "physical") {
		t.Errorf("Available = %+v, want physical memory", l)
	}
}

func TestRunningSystem(t *testing.T) {
	l := Available()
	if l.Bytes <= 0 || l.Source == "" {
		t.Fatalf("Available = %+v on this machine", l)
	}
	if p := Physical(); p.Bytes > 0 && l.Bytes > p.Bytes {
		t.Errorf("Available %d exceeds physical memory %d", l.Bytes, p.Bytes)
	}
	t.Logf("available: %d bytes from %s", l.Bytes, l.Source)
}

func TestUnescape(t *testing.T) {
	if got := unescape(`/a\040b`); got != "/a b" {
		t.Errorf("unescape = %q", got)
	}
}
