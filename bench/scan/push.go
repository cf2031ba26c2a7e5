package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkecr "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
)

func (s *server) ref(repo, tag string) (name.Reference, error) {
	return name.ParseReference(s.addr+"/"+repo+":"+tag, name.Insecure)
}

func (s *server) remoteOpts(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithAuth(s.auth), remote.WithContext(ctx)}
}

// uploadBlobs uploads an image's layers and config without its manifest,
// so that the timed part of a push is the manifest PUT alone.
func (s *server) uploadBlobs(ctx context.Context, repo string, img v1.Image) error {
	r, err := name.NewRepository(s.addr+"/"+repo, name.Insecure)
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	layers = append(layers, static.NewLayer(cfg, "application/vnd.oci.image.config.v1+json"))
	for _, l := range layers {
		if err := remote.WriteLayer(r, l, s.remoteOpts(ctx)...); err != nil {
			return fmt.Errorf("upload a blob to %s: %w", repo, err)
		}
	}
	return nil
}

// putManifest PUTs the image's manifest (its blobs are there already).
func (s *server) putManifest(ctx context.Context, repo, tag string, img v1.Image) error {
	ref, err := s.ref(repo, tag)
	if err != nil {
		return err
	}
	if err := remote.Put(ref, img, s.remoteOpts(ctx)...); err != nil {
		return fmt.Errorf("put manifest %s:%s: %w", repo, tag, err)
	}
	return nil
}

var errScanFailed = errors.New("scan failed")

// waitScan polls DescribeImageScanFindings every poll until the image's
// scan status is ACTIVE or COMPLETE, and returns the number of findings
// of the first page.
func (s *server) waitScan(ctx context.Context, repo, digest string, poll time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		out, err := s.ecr.DescribeImageScanFindings(ctx, &sdkecr.DescribeImageScanFindingsInput{
			RepositoryName: aws.String(repo), ImageId: &types.ImageIdentifier{ImageDigest: aws.String(digest)},
		})
		var nf *types.ScanNotFoundException
		switch {
		case errors.As(err, &nf):
		case err != nil:
			return 0, fmt.Errorf("describe-image-scan-findings %s@%s: %w", repo, digest, err)
		case out.ImageScanStatus != nil:
			switch out.ImageScanStatus.Status {
			case types.ScanStatusActive, types.ScanStatusComplete:
				n := 0
				if out.ImageScanFindings != nil {
					n = len(out.ImageScanFindings.EnhancedFindings) + len(out.ImageScanFindings.Findings)
				}
				return n, nil
			case types.ScanStatusFailed, types.ScanStatusUnsupportedImage:
				return 0, fmt.Errorf("%w: %s@%s: %s %s", errScanFailed, repo, digest, out.ImageScanStatus.Status, aws.ToString(out.ImageScanStatus.Description))
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%s@%s: no finished scan: %w", repo, digest, ctx.Err())
		case <-t.C:
		}
	}
}

// scanStatuses returns the scan status of each image of a repository by
// digest (DescribeImages, pages of 1000).
func (s *server) scanStatuses(ctx context.Context, repo string) (map[string]types.ScanStatus, error) {
	out := map[string]types.ScanStatus{}
	p := sdkecr.NewDescribeImagesPaginator(s.ecr, &sdkecr.DescribeImagesInput{RepositoryName: aws.String(repo), MaxResults: aws.Int32(1000)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe-images %s: %w", repo, err)
		}
		for _, d := range page.ImageDetails {
			if d.ImageScanStatus != nil {
				out[aws.ToString(d.ImageDigest)] = d.ImageScanStatus.Status
			}
		}
	}
	return out, nil
}

// randomReader streams n bytes of pseudo-random content (ChaCha8, several
// GB/s, so that the client does not steal the CPU the server needs).
type randomReader struct {
	src *rand.ChaCha8
	n   int64
}

func (r *randomReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	n, _ := r.src.Read(p)
	r.n -= int64(n)
	return n, nil
}

// pushBlob uploads size bytes of fresh random content as one blob
// (POST, one streamed PATCH, PUT with the digest) and returns how long it
// took.
func (s *server) pushBlob(ctx context.Context, repo string, size int64, seed uint64) (time.Duration, error) {
	r, err := name.NewRepository(s.addr+"/"+repo, name.Insecure)
	if err != nil {
		return 0, err
	}
	tr, err := transport.NewWithContext(ctx, r.Registry, s.auth, http.DefaultTransport, []string{r.Scope(transport.PushScope)})
	if err != nil {
		return 0, err
	}
	client := &http.Client{Transport: tr}
	base := "http://" + s.addr
	var seedBytes [32]byte
	seedBytes[0], seedBytes[1] = byte(seed), byte(seed>>8)
	seedBytes[2] = byte(time.Now().UnixNano())
	body := &randomReader{src: rand.NewChaCha8(seedBytes), n: size}
	h := sha256.New()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/", nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return 0, fmt.Errorf("start upload: %s", resp.Status)
	}
	loc, err := resp.Location()
	if err != nil {
		return 0, err
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodPatch, loc.String(), io.TeeReader(body, h))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return 0, fmt.Errorf("upload: %s", resp.Status)
	}
	loc, err = resp.Location()
	if err != nil {
		return 0, err
	}
	q := loc.Query()
	q.Set("digest", "sha256:"+hex.EncodeToString(h.Sum(nil)))
	loc.RawQuery = q.Encode()
	req, err = http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), nil)
	if err != nil {
		return 0, err
	}
	resp, err = client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return 0, fmt.Errorf("commit upload: %s", resp.Status)
	}
	return time.Since(start), nil
}
