package datasets

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestModuleCaches(t *testing.T) {
	t.Parallel()
	list := strings.Join([]string{"/a", "rel", "/b/"}, string(filepath.ListSeparator))
	for _, test := range []struct {
		gomodcache, gopath, home string
		want                     []string
	}{
		{"", "", "", nil},
		{"/m", "", "", []string{"/m"}},
		{"", "", "/h", []string{"/h/go/pkg/mod"}},
		{"/m", list, "/h", []string{"/m", "/a/pkg/mod", "/b/pkg/mod", "/h/go/pkg/mod"}},
		{"rel", "rel2", "rel3", nil},
		{"/h/go/pkg/mod/", "/h/go", "/h", []string{"/h/go/pkg/mod"}},
	} {
		got := moduleCaches(filepath.FromSlash(test.gomodcache), filepath.FromSlash(test.gopath), filepath.FromSlash(test.home))
		var want []string
		for _, w := range test.want {
			want = append(want, filepath.FromSlash(w))
		}
		if !slices.Equal(got, want) {
			t.Errorf("moduleCaches(%q, %q, %q) = %q, want %q", test.gomodcache, test.gopath, test.home, got, want)
		}
	}
}

// TestMNISTDirEnv finds the MNIST files in module caches named by the
// environment alone, with no go command on PATH.
func TestMNISTDirEnv(t *testing.T) {
	root := t.TempDir()
	rel := filepath.Join(filepath.FromSlash("github.com/petar/!go!m!n!i!s!t@"+mnistVersion), "data")
	// makeCache makes a module cache under root holding the MNIST files
	// and returns its path.
	makeCache := func(cache string) string {
		dir := filepath.Join(root, cache, rel)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		writeMNIST(t, dir, 3, 2, func(i int) byte { return byte(i) })
		return filepath.Join(root, cache)
	}
	modcache := makeCache("modcache")
	gopath2 := filepath.Join(root, "gopath2")
	makeCache(filepath.Join("gopath2", "pkg", "mod"))
	home := filepath.Join(root, "home")
	makeCache(filepath.Join("home", "go", "pkg", "mod"))
	empty := filepath.Join(root, "empty")

	t.Setenv("PATH", "")
	for _, test := range []struct {
		gomodcache, gopath, home string
		want                     string // the cache holding the files found
	}{
		{modcache, "", home, modcache},
		{"", empty + string(filepath.ListSeparator) + gopath2, home, filepath.Join(gopath2, "pkg", "mod")},
		{empty, empty, home, filepath.Join(home, "go", "pkg", "mod")},
		{"", "", home, filepath.Join(home, "go", "pkg", "mod")},
	} {
		t.Setenv("GOMODCACHE", test.gomodcache)
		t.Setenv("GOPATH", test.gopath)
		t.Setenv("HOME", test.home)
		dir, err := MNISTDir()
		if want := filepath.Join(test.want, rel); err != nil || dir != want {
			t.Errorf("GOMODCACHE=%q GOPATH=%q HOME=%q: MNISTDir() = %q, %v; want %q", test.gomodcache, test.gopath, test.home, dir, err, want)
			continue
		}
		s, err := LoadMNIST("", 0, 0)
		if err != nil || s.Train.Len() != 3 || s.Test.Len() != 2 {
			t.Errorf("LoadMNIST from %s: %v", dir, err)
		}
	}

	t.Setenv("GOMODCACHE", empty)
	t.Setenv("GOPATH", "")
	t.Setenv("HOME", filepath.Join(root, "nohome"))
	_, err := MNISTDir()
	if err == nil {
		t.Fatal("no MNIST files: no error")
	}
	for _, want := range []string{filepath.Join(empty, rel), filepath.Join(root, "nohome", "go", "pkg", "mod", rel), "--mnist-dir", "go mod download " + mnistModule} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if _, err := LoadMNIST("", 1, 1); err == nil || !strings.Contains(err.Error(), "--mnist-dir") {
		t.Errorf("LoadMNIST without files: error %v", err)
	}
}
