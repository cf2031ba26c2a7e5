package registry_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil"
)

func TestMain(m *testing.M) {
	code := storetest.Main(m)
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// The drydock binary, built once per test run: the end-to-end tests drive
// the real program (and kill it).
var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func drydockBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "drydock-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "drydock")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/drydock")
		cmd.Dir = testutil.RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/drydock: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// lockedBuffer collects a process's output for failure messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// server is a running `drydock serve` process.
type server struct {
	t       testing.TB
	bin     string
	DataDir string
	Host    string // 127.0.0.1:PORT
	URL     string // http://127.0.0.1:PORT
	cmd     *exec.Cmd
	log     *lockedBuffer
	done    chan struct{}
}

var addrRE = regexp.MustCompile(`msg="drydock serving" addr=(\S+)`)

// startServer runs `drydock serve` on a free loopback port with dataDir
// and extra flags, and waits until it answers /healthz. It is stopped
// (SIGTERM) when the test ends.
func startServer(t testing.TB, dataDir string, flags ...string) *server {
	t.Helper()
	bin := drydockBinary(t)
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir}, flags...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "DRYDOCK_LOG_LEVEL=debug")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, bin: bin, DataDir: dataDir, cmd: cmd, log: &lockedBuffer{}, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start drydock serve: %v", err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(s.log, line)
			if m := addrRE.FindStringSubmatch(line); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() { _ = cmd.Wait(); close(s.done) }()
	t.Cleanup(s.stop)
	select {
	case addr := <-addrc:
		s.Host, s.URL = addr, "http://"+addr
	case <-s.done:
		t.Fatalf("drydock serve exited before listening:\n%s", s.log)
	case <-time.After(60 * time.Second):
		t.Fatalf("drydock serve did not start listening:\n%s", s.log)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("drydock serve not healthy: %v\n%s", err, s.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// stop ends the server gracefully, or kills it after a grace period.
func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// kill ends the server with SIGKILL, as a crash would.
func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// password returns a login password made by `drydock login-password`.
func (s *server) password(t testing.TB) string {
	t.Helper()
	out, err := exec.Command(s.bin, "login-password", "--data-dir", s.DataDir).Output()
	if err != nil {
		t.Fatalf("drydock login-password: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// drydock runs the binary with args and returns its standard output.
func drydock(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(drydockBinary(t), args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("drydock %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// run runs an external program, failing the test with its output on error.
func run(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}
