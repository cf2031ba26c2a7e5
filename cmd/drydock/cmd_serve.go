package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/drydockhq/drydock/internal/auth"
	"github.com/drydockhq/drydock/internal/awsapi"
	"github.com/drydockhq/drydock/internal/awsapi/ecr"
	"github.com/drydockhq/drydock/internal/awsapi/inspector"
	"github.com/drydockhq/drydock/internal/blob"
	"github.com/drydockhq/drydock/internal/events"
	"github.com/drydockhq/drydock/internal/obs"
	"github.com/drydockhq/drydock/internal/registry"
	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/fetch"
	"github.com/drydockhq/drydock/internal/vulndb/sources"
)

// runServe runs the registry server until the process is told to stop
// (SIGINT or SIGTERM); then it stops accepting connections and lets the
// requests in flight finish.
func runServe(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "serve", "[flags]")
	addr := fs.String("addr", "127.0.0.1:5000", "address to listen on")
	dataDir := fs.String("data-dir", "drydock-data", "data directory (blobs, SQLite store, admin key)")
	storeURL := fs.String("store", "", "metadata store: postgres://... for PostgreSQL (default: SQLite in the data directory)")
	region := fs.String("region", "us-east-1", "AWS region named in finding ARNs and in event envelopes")
	createOnPush := fs.Bool("create-on-push", false, "create repositories on first push instead of answering NAME_UNKNOWN")
	maxBlobSize := fs.Int64("max-blob-size", 52000<<20, "largest blob an upload may hold, in bytes, larger ones get 413 SIZE_INVALID; 0: no limit (the default is ECR's layer limit, 52,000 MiB)")
	anonymousPull := fs.Bool("anonymous-pull", false, "let requests without credentials pull")
	shutdownTimeout := fs.Duration("shutdown-timeout", 60*time.Second, "how long to wait for requests in flight when stopping")
	scanWorkers := fs.Int("scan-workers", 2, "how many image scans run at once")
	reindexPerMinute := fs.Int("reindex-rate", scan.DefaultReindexRate, "images per minute re-indexed in the background after the catalogers improved, shared by the replicas (0: never)")
	dbSources := fs.String("db-sources", "", "vulnerability sources configuration (JSON; default: the built-in sources); its interval schedules syncs")
	dbSyncInterval := fs.Duration("db-sync-interval", 0, "sync the vulnerability database this often (0: the --db-sources file's interval, or no scheduled sync without one; air-gapped sites use 'drydock db import')")
	sbomExportDir := fs.String("sbom-export-dir", "", "directory Inspector2 CreateSbomExport writes to, one subdirectory per bucket (default: DATA-DIR/exports)")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if *sbomExportDir == "" {
		*sbomExportDir = filepath.Join(*dataDir, "exports")
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}

	db, err := store.Open(ctx, *storeURL, *dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.MigrateRegistry(ctx); err != nil {
		return err
	}
	blobs, err := blob.NewFS(filepath.Join(*dataDir, "blobs"))
	if err != nil {
		return err
	}
	authSvc, err := auth.Open(ctx, db, auth.Options{AnonymousPull: *anonymousPull, Logger: e.log})
	if err != nil {
		return err
	}
	if _, _, err := authSvc.Bootstrap(ctx, *dataDir); err != nil {
		return err
	}
	metrics := obs.New(e.log)
	reg := registry.New(registry.Options{
		Store:        db,
		Blobs:        blobs,
		Auth:         authSvc,
		Challenge:    authSvc.Challenge(),
		CreateOnPush: *createOnPush,
		Log:          e.log,
		Uploads:      metrics,
		MaxBlobSize:  *maxBlobSize,
	})

	// Scanning: pushed images are scanned by workers from the durable
	// queue in the store, beside the server (docs/scanning.md).
	account, err := awsapi.LoadAccount(ctx, db)
	if err != nil {
		return err
	}
	vdb, err := vulndb.Open(ctx, db)
	if err != nil {
		return err
	}
	vix, err := vulndb.OpenIndex(ctx, vdb)
	if err != nil {
		return err
	}
	metrics.Registry().MustRegister(vulndb.NewCollector(vdb))
	syncer, syncInterval, err := scheduledSync(e, *dbSources, *dbSyncInterval, vdb, vix)
	if err != nil {
		return err
	}
	scanner, err := scan.New(ctx, scan.Options{Store: db, Blobs: blobs, Vulns: vix, AccountID: account.ID, Region: *region, Log: e.log,
		RepositoryScanOnPush: ecr.RepositoryScanOnPush(db)})
	if err != nil {
		return err
	}
	metrics.Registry().MustRegister(scanner.UsageCollector())
	ecrAPI, err := ecr.New(ctx, ecr.Options{Store: db, Auth: authSvc, Log: e.log, Scanner: scanner})
	if err != nil {
		return err
	}
	inspectorAPI, err := inspector.New(ctx, inspector.Options{Store: db, Auth: authSvc, Scan: scanner, Log: e.log, ExportDir: *sbomExportDir})
	if err != nil {
		return err
	}
	scanCtx, stopScans := context.WithCancel(context.WithoutCancel(ctx))
	defer stopScans()
	scansDone := make(chan error, 1)
	go func() {
		scansDone <- scanner.Run(scanCtx, scan.RunOptions{Concurrency: *scanWorkers, ReindexRate: reindexRate(*reindexPerMinute), Yield: metrics.Uploading})
	}()
	// Events: outbox rows go to the webhook targets (docs/events.md).
	eventSvc, err := events.New(ctx, events.Options{Store: db, Account: account.ID, Region: *region, Log: e.log, Exploitability: scanner.Exploitability})
	if err != nil {
		return err
	}
	eventsCtx, stopEvents := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEvents()
	eventsDone := make(chan error, 1)
	go func() { eventsDone <- eventSvc.Run(eventsCtx, events.RunOptions{}) }()
	// Vulnerability data: scheduled syncs make new generations; a failed
	// sync keeps the last good one and shows as staleness in db status and
	// /metrics. The scan service picks new generations up for re-evaluation.
	syncDone := make(chan error, 1)
	if syncer != nil {
		e.log.Info("scheduled vulnerability database sync", "interval", syncInterval, "sources", len(syncer.Sources))
		go func() { syncDone <- syncer.Run(eventsCtx, syncInterval, nil) }()
	} else {
		syncDone <- nil
	}

	mux := http.NewServeMux()
	mux.Handle("GET /healthz", obs.HealthHandler(func(ctx context.Context) error { return db.SQL().PingContext(ctx) }))
	mux.Handle("GET /metrics", metrics.Handler())
	// The /v2 API goes straight to the registry, bypassing ServeMux, which
	// would clean (and redirect) paths the registry must judge itself.
	root := metrics.Middleware(nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2" || strings.HasPrefix(r.URL.Path, "/v2/") {
			reg.ServeHTTP(w, r)
			// A manifest PUT: the scanner reads the outbox now rather
			// than at its next poll (a refused PUT costs one empty read).
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
				scanner.NotifyPush()
			}
			return
		}
		// The ECR API: AWS JSON 1.1, POST to any path with X-Amz-Target.
		if r.Method == http.MethodPost && r.Header.Get("X-Amz-Target") != "" {
			ecrAPI.ServeHTTP(w, r)
			return
		}
		// The Inspector API: REST-JSON, the operation is the path.
		if inspector.IsPath(r.URL.Path) {
			inspectorAPI.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}))

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           root,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          nil,
	}
	e.log.Info("drydock serving", "addr", ln.Addr().String(), "data_dir", *dataDir, "store", db.Location(),
		"create_on_push", *createOnPush, "anonymous_pull", *anonymousPull)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	e.log.Info("shutting down: finishing requests in flight", "timeout", *shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), *shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	stopEvents()
	<-eventsDone
	if err := <-syncDone; err != nil {
		e.log.Error("scheduled sync", "err", err)
	}
	// Running scans are given back to the queue; another replica or the
	// next start runs them.
	stopScans()
	if err := <-scansDone; err != nil {
		return fmt.Errorf("scan workers: %w", err)
	}
	e.log.Info("stopped")
	return nil
}

// scheduledSync builds the syncer for drydock serve's scheduled
// vulnerability database updates, or returns nil when none is configured:
// the interval comes from --db-sync-interval, else from the sources file.
func scheduledSync(e *env, sourcesFile string, interval time.Duration, vdb *vulndb.DB, vix *vulndb.Index) (*vulndb.Syncer, time.Duration, error) {
	if interval <= 0 && sourcesFile == "" {
		return nil, 0, nil
	}
	cfg, err := sources.Load(sourcesFile)
	if err != nil {
		return nil, 0, err
	}
	if interval <= 0 {
		interval = cfg.SyncInterval()
	}
	client := fetch.New(fetch.Options{Logger: e.log})
	syncer, err := cfg.NewSyncer(vdb, vix, sources.Options{Client: client, Getenv: e.getenv}, e.log)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", errUsage, err)
	}
	return syncer, interval, nil
}
