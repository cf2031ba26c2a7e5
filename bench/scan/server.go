package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdkecr "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
)

// template makes a data directory holding a vulnerability database built
// from the real fixture feeds with `drydock db update`, to be copied for
// each server the harness starts.
func template(ctx context.Context, drydock, fixtures, dir string) error {
	cfg := filepath.Join(dir, "sources.json")
	feed := func(rel string) string { return filepath.Join(fixtures, rel) }
	sources := fmt.Sprintf(`{"no_defaults":true,"sources":[
		{"name":"alpine-secdb","kind":"alpine-secdb","url":%q,"releases":["v3.10"]},
		{"name":"osv-Go","kind":"osv","url":%q},
		{"name":"osv-Maven","kind":"osv","url":%q},
		{"name":"osv-Debian","kind":"osv","url":%q},
		{"name":"kev","kind":"kev","url":%q}]}`,
		feed("feeds/alpine-secdb"), feed("feeds/osv/Go/all.zip"), feed("feeds/osv/records/GHSA-jfh8-c2jp-5v3q.json"),
		feed("feeds/osv/records/DSA-3029-1.json"), feed("enrichment/kev/known_exploited_vulnerabilities.json"))
	if err := os.WriteFile(cfg, []byte(sources), 0o600); err != nil {
		return err
	}
	data := filepath.Join(dir, "data")
	out, err := exec.CommandContext(ctx, drydock, "db", "update", "--data-dir", data, "--sources", cfg).CombinedOutput()
	if !strings.Contains(string(out), "generation 1:") {
		return fmt.Errorf("drydock db update: %v\n%s", err, out)
	}
	return nil
}

var servingRE = regexp.MustCompile(`msg="drydock serving" addr=(\S+)`)

// server is a running `drydock serve` on a copy of the template data
// directory, with an admin access key.
type server struct {
	cmd     *exec.Cmd
	dir     string
	addr    string
	done    chan struct{}
	logs    *logBuffer
	ecr     *sdkecr.Client
	auth    authn.Authenticator
	keyID   string
	secret  string
	stopped bool
}

type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 1<<20 {
		l.b.WriteString(s)
		l.b.WriteByte('\n')
	}
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start copies the template data directory to dir and starts drydock serve
// on a free loopback port with scanning workers, then creates an admin key,
// configures ENHANCED scanning with a scan-on-push rule for every
// repository and logs in to the registry.
func start(ctx context.Context, drydock, tmpl, dir string, workers int, extra ...string) (*server, error) {
	if out, err := exec.Command("cp", "-a", filepath.Join(tmpl, "data"), dir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("copy template: %v: %s", err, out)
	}
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir, "--scan-workers", fmt.Sprint(workers)}, extra...)
	cmd := exec.Command(drydock, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, dir: dir, done: make(chan struct{}), logs: &logBuffer{}}
	addrc := make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			s.logs.add(sc.Text())
			if m := servingRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case s.addr = <-addrc:
	case <-s.done:
		return nil, fmt.Errorf("drydock serve exited:\n%s", s.logs)
	case <-time.After(2 * time.Minute):
		s.stop()
		return nil, fmt.Errorf("drydock serve did not start:\n%s", s.logs)
	}
	if err := s.setup(ctx, drydock); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *server) setup(ctx context.Context, drydock string) error {
	out, err := exec.CommandContext(ctx, drydock, "keys", "create", "--data-dir", s.dir, "--name", "bench", "--admin").Output()
	if err != nil {
		return fmt.Errorf("drydock keys create: %w", err)
	}
	var key struct {
		AccessKeyID     string `json:"accessKeyId"`
		SecretAccessKey string `json:"secretAccessKey"`
	}
	if err := json.Unmarshal(out, &key); err != nil || key.AccessKeyID == "" {
		return fmt.Errorf("drydock keys create printed %q: %v", out, err)
	}
	s.keyID, s.secret = key.AccessKeyID, key.SecretAccessKey
	s.ecr = sdkecr.New(sdkecr.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://" + s.addr),
		Credentials:  credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, ""),
	})
	_, err = s.ecr.PutRegistryScanningConfiguration(ctx, &sdkecr.PutRegistryScanningConfigurationInput{
		ScanType: types.ScanTypeEnhanced,
		Rules: []types.RegistryScanningRule{{
			ScanFrequency:     types.ScanFrequencyScanOnPush,
			RepositoryFilters: []types.ScanningRepositoryFilter{{Filter: aws.String("*"), FilterType: types.ScanningRepositoryFilterTypeWildcard}},
		}},
	})
	if err != nil {
		return fmt.Errorf("put-registry-scanning-configuration: %w", err)
	}
	tok, err := s.ecr.GetAuthorizationToken(ctx, &sdkecr.GetAuthorizationTokenInput{})
	if err != nil {
		return fmt.Errorf("get-authorization-token: %w", err)
	}
	if len(tok.AuthorizationData) != 1 {
		return errors.New("get-authorization-token: no authorization data")
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(tok.AuthorizationData[0].AuthorizationToken))
	if err != nil {
		return fmt.Errorf("authorization token: %w", err)
	}
	user, pw, ok := strings.Cut(string(raw), ":")
	if !ok {
		return errors.New("authorization token: no user:password")
	}
	s.auth = &authn.Basic{Username: user, Password: pw}
	return nil
}

func (s *server) createRepository(ctx context.Context, name string) error {
	_, err := s.ecr.CreateRepository(ctx, &sdkecr.CreateRepositoryInput{RepositoryName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("create-repository %s: %w", name, err)
	}
	return nil
}

// stop stops the server (SIGTERM, then SIGKILL after a minute) and removes
// its data directory.
func (s *server) stop() {
	if s.stopped {
		return
	}
	s.stopped = true
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(time.Minute):
		_ = s.cmd.Process.Kill()
	}
	_ = s.cmd.Wait()
	_ = os.RemoveAll(s.dir)
}
