package scan

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/drydockhq/drydock/internal/blob"
	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/catalogers"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/vulndb"
)

// Options configure a Service.
type Options struct {
	// Store is the metadata store; New applies the scan migrations.
	Store *store.DB
	// Blobs is the registry's blob store, where layers are read from.
	Blobs blob.Store
	// Indexer builds inventories; nil means catalogers.All() with the
	// store's layer cache.
	Indexer *index.Indexer
	// Vulns is the vulnerability database's lookup index; scans match
	// against its current snapshot.
	Vulns *vulndb.Index
	// RepositoryScanOnPush returns a repository's deprecated per-repository
	// scanOnPush setting; nil means false for all.
	RepositoryScanOnPush func(ctx context.Context, repository string) (bool, error)
	// AccountID and Region shape ARNs in findings and events.
	AccountID string
	Region    string
	// Queue tunes the job queue.
	Queue QueueOptions
	// Now is the clock (default time.Now).
	Now func() time.Time
	Log *slog.Logger
}

// Service is the scanning service.
type Service struct {
	db       *store.DB
	reg      *store.Registry
	queue    *Queue
	indexer  *index.Indexer
	matchers matcherCache
	opts     Options
	log      *slog.Logger
	// packer compresses runs of outbox events into one row (see outbox.go).
	packer *zstd.Encoder
	// reevalBatch overrides how many images one re-evaluation transaction
	// covers, and reevalHook runs after each batch commits (tests).
	reevalBatch int
	reevalHook  func(batch int) error
}

// New migrates the registry and scan domains and returns the service.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.Store == nil {
		return nil, fmt.Errorf("scan: no store")
	}
	// The service reads the registry's tables (manifests, outbox).
	if err := o.Store.MigrateRegistry(ctx); err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	if err := Migrate(ctx, o.Store); err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Queue.Now == nil {
		o.Queue.Now = o.Now
	}
	if o.AccountID == "" {
		o.AccountID = "000000000000"
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ix := o.Indexer
	if ix == nil {
		cache, err := index.NewStoreCache(ctx, o.Store)
		if err != nil {
			return nil, fmt.Errorf("scan: layer cache: %w", err)
		}
		ix = &index.Indexer{Catalogers: catalogers.All(), Cache: cache, Log: log}
	}
	packer, err := newPacker()
	if err != nil {
		return nil, err
	}
	return &Service{db: o.Store, reg: o.Store.Registry(), queue: NewQueue(o.Store, o.Queue), indexer: ix, opts: o, log: log, packer: packer}, nil
}

// Queue returns the service's job queue.
func (s *Service) Queue() *Queue { return s.queue }

// RegistryScanningConfiguration returns the registry scanning
// configuration (BASIC without rules when never set).
func (s *Service) RegistryScanningConfiguration(ctx context.Context) (Config, error) {
	return loadConfig(ctx, s.db)
}

// PutRegistryScanningConfiguration validates and stores the configuration
// and returns it as stored. An invalid one is a *ValidationError. When the
// new or the old configuration is ENHANCED and repositories' scanning
// changes, `ECR Scan Resource Change` events list them (scopeChanges).
func (s *Service) PutRegistryScanningConfiguration(ctx context.Context, c Config) (Config, error) {
	c, err := c.Normalize()
	if err != nil {
		return Config{}, err
	}
	list, err := s.reg.Repositories(ctx, "", 0)
	if err != nil {
		return Config{}, fmt.Errorf("scan: repositories: %w", err)
	}
	repos := make([]string, 0, len(list))
	for _, r := range list {
		repos = append(repos, r.Name)
	}
	onPush, err := s.scanOnPushSettings(ctx, repos)
	if err != nil {
		return Config{}, err
	}
	now := s.opts.Now()
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		old, err := loadConfig(ctx, tx)
		if err != nil {
			return err
		}
		if err := saveConfig(ctx, tx, c, now); err != nil {
			return err
		}
		return s.scopeChangeTx(ctx, tx, old, c, repos, onPush, now)
	})
	if err != nil {
		return Config{}, err
	}
	return c, nil
}

// EffectiveConfiguration returns each repository's effective scanning
// configuration under the registry configuration, in the order given.
func (s *Service) EffectiveConfiguration(ctx context.Context, repositories ...string) ([]RepositoryConfig, error) {
	c, err := s.RegistryScanningConfiguration(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]RepositoryConfig, 0, len(repositories))
	for _, r := range repositories {
		onPush, err := s.repoScanOnPush(ctx, c, r)
		if err != nil {
			return nil, err
		}
		out = append(out, c.Effective(r, onPush))
	}
	return out, nil
}

func (s *Service) repoScanOnPush(ctx context.Context, c Config, repo string) (bool, error) {
	if c.ScanType != Basic || s.opts.RepositoryScanOnPush == nil {
		return false, nil
	}
	v, err := s.opts.RepositoryScanOnPush(ctx, repo)
	if err != nil {
		return false, fmt.Errorf("scan: scanOnPush of %s: %w", repo, err)
	}
	return v, nil
}
