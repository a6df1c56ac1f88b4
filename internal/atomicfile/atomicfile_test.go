package atomicfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.txt")
	for _, content := range []string{"first\n", "second, longer content\n", ""} {
		if err := WriteBytes(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != content {
			t.Errorf("content = %q, want %q", got, content)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o644 {
			t.Errorf("mode = %v, want 0644", fi.Mode().Perm())
		}
		checkNoTemp(t, dir)
	}
}

func TestWriteRelative(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := WriteBytes("rel.txt", []byte("x")); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "rel.txt"))
	if err != nil || string(got) != "x" {
		t.Fatalf("got %q, %v", got, err)
	}
	checkNoTemp(t, dir)
}

func TestWriteLarge(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big")
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	err := Write(path, func(w io.Writer) error {
		// Many small writes through the buffer.
		for i := 0; i < len(data); i += 100 {
			if _, err := w.Write(data[i:min(i+100, len(data))]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("content differs: %d bytes, want %d", len(got), len(data))
	}
}

func TestWriteFailure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keep.txt")
	old := []byte("old content\n")
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	errWrite := errors.New("write failed")
	err := Write(path, func(w io.Writer) error {
		// More than the buffer holds, so part of it reaches the temporary file.
		w.Write(bytes.Repeat([]byte("new"), 1<<17))
		return errWrite
	})
	if !errors.Is(err, errWrite) {
		t.Fatalf("err = %v, want %v", err, errWrite)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, old) {
		t.Errorf("destination changed to %d bytes", len(got))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode changed to %v", fi.Mode().Perm())
	}
	checkNoTemp(t, dir)

	// A missing destination stays missing.
	absent := filepath.Join(dir, "absent.txt")
	if err := Write(absent, func(io.Writer) error { return errWrite }); !errors.Is(err, errWrite) {
		t.Fatalf("err = %v, want %v", err, errWrite)
	}
	if _, err := os.Stat(absent); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("destination exists after failed write: %v", err)
	}
	checkNoTemp(t, dir)
}

func TestWritePanic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.txt")
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic was not propagated")
			}
		}()
		Write(path, func(w io.Writer) error {
			w.Write([]byte("partial"))
			panic("boom")
		})
	}()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("destination exists after panic: %v", err)
	}
	checkNoTemp(t, dir)
}

func TestWriteNoDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "f.txt")
	if err := WriteBytes(path, []byte("x")); err == nil {
		t.Error("no error writing into a missing directory")
	}
}

func TestWriteOverDir(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("rename semantics differ")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "sub")
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteBytes(path, []byte("x")); err == nil {
		t.Error("no error replacing a non-empty directory")
	}
	checkNoTemp(t, dir)
}

// checkNoTemp fails the test when dir holds a temporary file left by Write.
func checkNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

const (
	envHelper = "ATOMICFILE_TEST_HELPER"
	envPath   = "ATOMICFILE_TEST_PATH"
	envChunks = "ATOMICFILE_TEST_CHUNKS"
	envPause  = "ATOMICFILE_TEST_PAUSE"

	chunkSize = 1 << 16
)

// TestHelperProcess is not a test: run by the tests below as a subprocess,
// it writes chunks of chunkSize bytes to the file named by envPath with
// Write, pausing between chunks and reporting each one on stdout.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(envHelper) != "1" {
		return
	}
	chunks, _ := strconv.Atoi(os.Getenv(envChunks))
	pause, _ := time.ParseDuration(os.Getenv(envPause))
	err := Write(os.Getenv(envPath), func(w io.Writer) error {
		for i := 0; i < chunks; i++ {
			if _, err := w.Write(chunk(i)); err != nil {
				return err
			}
			fmt.Printf("chunk %d\n", i)
			time.Sleep(pause)
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("done")
	os.Exit(0)
}

// chunk returns chunk i of the helper's output.
func chunk(i int) []byte {
	return bytes.Repeat([]byte{'a' + byte(i%26)}, chunkSize)
}

func newContent(chunks int) []byte {
	var b []byte
	for i := 0; i < chunks; i++ {
		b = append(b, chunk(i)...)
	}
	return b
}

func helper(t *testing.T, path string, chunks int, pause time.Duration) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	switch runtime.GOOS {
	case "js", "wasip1", "ios":
		t.Skipf("cannot run subprocesses on %s", runtime.GOOS)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(),
		envHelper+"=1",
		envPath+"="+path,
		envChunks+"="+strconv.Itoa(chunks),
		envPause+"="+pause.String(),
	)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, bufio.NewScanner(out)
}

// TestKilledMidWrite kills a process while it writes with Write and checks
// that the destination still holds the complete old content.
func TestKilledMidWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.json")
	old := []byte("the complete old content\n")
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	const chunks = 64
	cmd, sc := helper(t, path, chunks, 20*time.Millisecond)
	// Wait until several chunks, more than the write buffer, are written.
	seen := 0
	for seen < 8 && sc.Scan() {
		if strings.HasPrefix(sc.Text(), "chunk ") {
			seen++
		}
	}
	if seen < 8 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper stopped after %d chunks", seen)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, old) {
		t.Fatalf("destination holds %d bytes, want the old %d", len(got), len(old))
	}
	// The killed process leaves its partial temporary file; check that it
	// was really killed mid-write.
	tmps, err := filepath.Glob(filepath.Join(dir, ".model.json.tmp-*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tmps) != 1 {
		t.Fatalf("temporary files: %v, want one", tmps)
	}
	fi, err := os.Stat(tmps[0])
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() == 0 || fi.Size() >= chunks*chunkSize {
		t.Errorf("temporary file has %d bytes, want a partial write", fi.Size())
	}
}

// TestKilledAnyTime kills writing processes after varying delays and checks
// that the destination is always either the complete old or the complete
// new content.
func TestKilledAnyTime(t *testing.T) {
	const chunks = 16
	want := newContent(chunks)
	old := []byte("old\n")
	delays := []time.Duration{0, time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond, 200 * time.Millisecond}
	if testing.Short() {
		delays = delays[:3]
	}
	var sawOld, sawNew bool
	for _, d := range delays {
		dir := t.TempDir()
		path := filepath.Join(dir, "f")
		if err := os.WriteFile(path, old, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd, sc := helper(t, path, chunks, 0)
		go func() {
			for sc.Scan() {
			}
		}()
		time.Sleep(d)
		cmd.Process.Kill()
		cmd.Wait()
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case bytes.Equal(got, old):
			sawOld = true
		case bytes.Equal(got, want):
			sawNew = true
		default:
			t.Errorf("kill after %v: destination holds %d bytes, neither old (%d) nor new (%d)", d, len(got), len(old), len(want))
		}
	}
	t.Logf("saw old content: %v, new content: %v", sawOld, sawNew)
}

func TestCheckNotInput(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, name := range []string{"a.json", "b.json"} {
		if err := os.WriteFile(name, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	abs := filepath.Join(dir, "a.json")
	links := runtime.GOOS != "windows"
	if links {
		if err := os.Link("a.json", "hard.json"); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("a.json", "sym.json"); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		out    string
		inputs []string
		same   bool
		links  bool
	}{
		{out: "a.json", inputs: []string{"a.json"}, same: true},
		{out: "./a.json", inputs: []string{"a.json"}, same: true},
		{out: abs, inputs: []string{"b.json", "a.json"}, same: true},
		{out: "sub/../a.json", inputs: []string{"a.json"}, same: true},
		{out: "hard.json", inputs: []string{"a.json"}, same: true, links: true},
		{out: "sym.json", inputs: []string{"a.json"}, same: true, links: true},
		{out: "new.json", inputs: []string{"./new.json"}, same: true},
		{out: "b.json", inputs: []string{"a.json"}},
		{out: "new.json", inputs: []string{"a.json", "b.json"}},
		{out: "a.json", inputs: []string{"", "b.json"}},
		{out: "a.json"},
		{out: "", inputs: []string{"a.json"}},
	} {
		if tc.links && !links {
			continue
		}
		err := CheckNotInput(tc.out, tc.inputs...)
		if (err != nil) != tc.same {
			t.Errorf("CheckNotInput(%q, %q) = %v, want error: %v", tc.out, tc.inputs, err, tc.same)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), tc.out) {
			t.Errorf("error %q does not name the output %q", err, tc.out)
		}
	}
}
