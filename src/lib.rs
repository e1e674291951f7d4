//! The `tributary` binary's wiring: configuration, roles, the HTTP server, startup and graceful
//! shutdown. No protocol, storage or query logic lives here — only the joints between crates:
//! the head (from `ingest`) and the Parquet reader (from `storage`) are handed to the query
//! engine as `storage::read::Source`s, which is why `query` never depends on `ingest`.

pub mod allocator;
pub(crate) mod compaction;
pub mod config;
pub(crate) mod fleet;
pub(crate) mod health;
pub(crate) mod rule_sink;
pub mod status;
pub mod telemetry;
pub(crate) mod tls;

use std::sync::Arc;

use axum::Router;
use axum::http::{Extensions, HeaderMap, StatusCode, Version};
use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate};
use tributary_ingest::Ingester;
use tributary_query::Engine;
use tributary_query::log_source::MergedLogSource;
use tributary_query::logql::LogqlEngine;
use tributary_query::remote::{Fanout, FanoutConfig, IngesterFailure};
use tributary_query::source::MergedSource;
use tributary_query::traces::{MergedTraceSource, TraceEngine};
use tributary_storage::auth::Auth;
use tributary_storage::read::{LogSource, Source, TraceSource};
use tributary_storage::{Compactor, Storage};

use crate::config::{Config, Role, ServerConfig};
use crate::tls::{Protocol, Tls};

/// Startup and serving failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object store or the local data directory could not be opened.
    #[error("opening storage: {0}")]
    Storage(#[from] tributary_storage::Error),
    /// The ingester (WAL replay included) failed to open or to shut down.
    #[error("opening ingest: {0}")]
    Ingest(#[from] tributary_ingest::Error),
    /// The token table (`[auth]`, its token file) could not be loaded.
    #[error("loading tokens: {0}")]
    Auth(tributary_storage::Error),
    /// A TLS certificate, key or client CA file (`[server.tls]`) could not be loaded.
    #[error("loading TLS files: {0}")]
    Tls(String),
    /// `query.ingester_token_file` could not be read.
    #[error("reading query.ingester_token_file {path}: {source}")]
    IngesterToken {
        /// The configured file.
        path: std::path::PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The `ruler` role's remote-write (its token file, its HTTP client) could not be set up.
    #[error("setting up the ruler's remote-write: {0}")]
    RemoteWrite(String),
    /// The rule files (`[ruler] rule_files`) could not be loaded.
    #[error("loading rules: {0}")]
    Ruler(tributary_query::Error),
    /// A listen address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: std::net::SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// An HTTP server (main or dedicated OTLP/HTTP) stopped with an I/O error.
    #[error("serving HTTP: {0}")]
    Serve(std::io::Error),
    /// The OTLP/gRPC server stopped with an error.
    #[error("serving OTLP/gRPC: {0}")]
    Grpc(#[from] tonic::transport::Error),
    /// `server.data_dir` could not be created.
    #[error("creating data dir {path}: {source}")]
    DataDir {
        /// The configured directory.
        path: std::path::PathBuf,
        /// Why creating it failed.
        source: std::io::Error,
    },
}

/// Runs the server until SIGINT/SIGTERM, then stops accepting, flushes the head and closes the WAL.
/// `flags` are the command-line flags in force ([`status::flags`]), for `/api/v1/status/flags`.
pub async fn run(cfg: Config, flags: std::collections::BTreeMap<String, String>) -> Result<(), Error> {
    std::fs::create_dir_all(&cfg.server.data_dir).map_err(|source| Error::DataDir {
        path: cfg.server.data_dir.clone(),
        source,
    })?;
    let (auth_cfg, warnings) = cfg.effective_auth();
    for w in warnings {
        tracing::warn!("{w}");
    }
    let auth = Auth::open(&auth_cfg).map_err(Error::Auth)?;
    let tls = Tls::open(&cfg.server.tls)?;
    if tls.is_some() {
        tracing::info!(
            client_certificates = ?cfg.server.tls.client_ca_file.as_ref().map(|_| cfg.server.tls.client_auth.unwrap_or_default()),
            "TLS on for every listener"
        );
    }
    // The port answers from the start: `/-/healthy` at once, `/-/ready` and the APIs once the
    // WAL is replayed and the catalog loaded (`health`).
    let listener = TcpListener::bind(cfg.server.http_listen)
        .await
        .map_err(|source| Error::Bind {
            addr: cfg.server.http_listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(Error::Serve)?;
    let has_wal = matches!(cfg.server.role, Role::AllInOne | Role::Ingest);
    let startup = health::Startup::new(cfg.server.data_dir.clone(), has_wal);
    let mut serving = tokio::spawn(serve_until_signal(
        listener,
        tls.clone(),
        telemetry::traced(health::router(startup.clone())),
        cfg.server.shutdown_timeout,
    ));
    tracing::info!(%addr, role = ?cfg.server.role, data_dir = %cfg.server.data_dir.display(), "tributary listening");
    // The receivers stop on this, after the main port (they finish their requests in flight).
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // The OTLP ports too answer from the start (503 / UNAVAILABLE until the replay is over),
    // so a Collector retries instead of failing on a refused connection.
    let (side_servers, grpc) = if has_wal {
        otlp_receivers(&cfg, &auth, tls.as_ref(), &startup, &stop_rx).await?
    } else {
        (Vec::new(), None)
    };
    // Certificate rotation without a restart: the TLS files are polled for changes.
    if let Some(tls) = &tls {
        tokio::spawn(tls.clone().watch(stop_rx.clone()));
    }
    let started = tokio::select! {
        started = start(&cfg, flags, &auth, &startup, grpc.as_ref(), stop_rx) => started?,
        served = &mut serving => {
            // A signal before startup ended: nothing was acknowledged yet, so nothing to flush.
            // `main` stops waiting for a replay still running after a second.
            tracing::info!("stopped during startup");
            return served.map_err(|e| Error::Serve(std::io::Error::other(e)))?;
        }
    };
    tracing::info!("started: serving every API");
    let Started {
        flusher,
        compactor,
        ingester,
    } = started;
    serving.await.map_err(|e| Error::Serve(std::io::Error::other(e)))??;

    tracing::info!("stopping: flushing the head and closing the write-ahead log");
    let _ = stop_tx.send(true);
    // The receivers finish their requests in flight within the same bound.
    let receivers_done = tokio::time::Instant::now() + cfg.server.shutdown_timeout;
    for mut server in side_servers {
        match tokio::time::timeout_at(receivers_done, &mut server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::error!(error = %e, "a receiver stopped with an error"),
            Ok(Err(e)) => tracing::error!(error = %e, "a receiver task failed"),
            Err(_) => {
                tracing::warn!("a receiver still had requests running after server.shutdown_timeout");
                server.abort();
            }
        }
    }
    if let Some(f) = flusher {
        let _ = f.await;
    }
    if let Some(mut c) = compactor {
        // The schedule stops its round (everything a round did is committed or unlisted
        // garbage) and releases the lease, so the next compactor starts at once; a release
        // that hangs on the store is cut off.
        if tokio::time::timeout(std::time::Duration::from_secs(10), &mut c)
            .await
            .is_err()
        {
            tracing::warn!("the compactor did not release its lease within 10 s; it expires on its own");
            c.abort();
        }
    }
    if let Some(ing) = ingester {
        ing.shutdown().await?;
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// What runs once startup is over, for the shutdown sequence.
struct Started {
    flusher: Option<tokio::task::JoinHandle<()>>,
    compactor: Option<tokio::task::JoinHandle<()>>,
    ingester: Option<Arc<Ingester>>,
}

/// Everything after the ports are bound: storage (the catalog), the ingester (the WAL
/// replay), the routes of the role and the background tasks. Ends by handing the apps to
/// `startup` (and the ingester to `grpc`), which serve them from then on.
async fn start(
    cfg: &Config,
    flags: std::collections::BTreeMap<String, String>,
    auth: &Auth,
    startup: &health::Startup,
    grpc: Option<&tributary_ingest::grpc::Otlp>,
    stop_rx: tokio::sync::watch::Receiver<bool>,
) -> Result<Started, Error> {
    let storage = Storage::open(&cfg.storage, &cfg.server.data_dir).await?;
    let mut registry = Registry::default();
    let caches = telemetry::CacheGauges::default();
    caches.register(&mut registry);
    storage.register_metrics(&mut registry);
    telemetry::register_process_metrics(&mut registry);
    // Every query API router is measured by the one middleware (by API, route and outcome).
    let requests = tributary_query::metrics::RequestMetrics::default();
    requests.register(&mut registry);

    let ingester = match cfg.server.role {
        Role::AllInOne | Role::Ingest => {
            let mut ingest = cfg.ingest.clone();
            if cfg.server.role == Role::AllInOne {
                // Its own commits are visible to its own queries at once: nothing to bridge.
                ingest.head.keep_flushed = std::time::Duration::ZERO;
            }
            let ing =
                Ingester::open_reporting(ingest, &cfg.server.data_dir, storage.clone(), startup.replay.clone()).await?;
            ing.register_metrics(&mut registry);
            Some(ing)
        }
        Role::Query | Role::Compactor | Role::Ruler => None,
    };
    let compaction = match cfg.server.role {
        Role::AllInOne | Role::Compactor => {
            let compactor = Compactor::new(storage.clone(), &cfg.storage, compaction::owner_id())?;
            Some(compaction::CompactionService::new(
                compactor,
                &mut registry,
                auth.clone(),
            ))
        }
        Role::Ingest | Role::Query | Role::Ruler => None,
    };
    let refresh: telemetry::Refresh = {
        let (ing, storage) = (ingester.clone(), storage.clone());
        Arc::new(move || {
            if let Some(ing) = &ing {
                ing.refresh_gauges();
            }
            caches.set(&storage.cache_stats());
        })
    };

    let mut app = Router::new();
    if let Some(ing) = &ingester {
        app = app.merge(tributary_ingest::http::router(ing.clone(), auth.clone()));
    }
    if let Some(c) = &compaction {
        app = app.merge(c.router());
    }
    // A query (or ruler) process reads every ingester's head too (`query.ingesters`), ahead of
    // Parquet.
    let fanout = match cfg.server.role {
        Role::AllInOne | Role::Query | Role::Ruler if !cfg.query.ingesters.is_empty() => {
            // A rule evaluated without an ingester's data would write a wrong value as if it
            // were right (and resolve that ingester's clusters' alerts): the ruler's reads fail
            // instead, which fails the evaluation and names the ingester.
            let failure = match cfg.server.role {
                Role::Ruler => IngesterFailure::Fail,
                _ => cfg.query.ingester_failure,
            };
            Some(fanout(&cfg.query, failure).await?)
        }
        _ => None,
    };
    let mut query_source = None;
    let mut api_engine = None;
    let mut logql_engine = None;
    // The ruler role evaluates through the same engines as a querier, without serving them.
    let serves_queries = matches!(cfg.server.role, Role::AllInOne | Role::Query);
    if serves_queries || cfg.server.role == Role::Ruler {
        let mut sources: Vec<Arc<dyn Source>> = Vec::new();
        if let Some(ing) = &ingester {
            sources.push(ing.head());
        }
        if let Some(f) = &fanout {
            sources.push(f.clone());
        }
        sources.push(storage.source());
        let source: Arc<dyn Source> = Arc::new(MergedSource::new(sources));
        query_source = Some(source.clone());
        let engine = Arc::new(Engine::new(source, cfg.query.clone()));
        engine.metrics().register(&mut registry);
        api_engine = Some(engine.clone());
        let query_metrics = engine.metrics().clone();
        let engine_metrics = query_metrics.clone();
        if serves_queries {
            app = app.merge(requests.measure("prometheus", tributary_query::http::router(engine, auth.clone())));
        }
        let mut log_sources: Vec<Arc<dyn LogSource>> = Vec::new();
        if let Some(ing) = &ingester {
            log_sources.push(ing.head());
        }
        if let Some(f) = &fanout {
            log_sources.push(f.clone());
        }
        log_sources.push(storage.log_source());
        let logql = LogqlEngine::new(Arc::new(MergedLogSource::new(log_sources)), cfg.query.logql.clone())
            .with_listings_and_metrics(cfg.query.max_listing_items, query_metrics);
        let logql = Arc::new(logql);
        logql_engine = Some(logql.clone());
        if serves_queries {
            app = app.merge(requests.measure("loki", tributary_query::http::loki_router(logql, auth.clone())));
        }
        // Traces: the head's spans (or every ingester's, through the fan-out) and the spans table.
        let mut trace_sources: Vec<Arc<dyn TraceSource>> = Vec::new();
        if let Some(ing) = &ingester {
            trace_sources.push(ing.head());
        }
        if let Some(f) = &fanout {
            trace_sources.push(f.clone());
        }
        trace_sources.push(storage.trace_source());
        let traces = Arc::new(TraceEngine::new(
            Arc::new(MergedTraceSource::new(trace_sources)),
            cfg.query.traces.clone(),
            engine_metrics.clone(),
        ));
        if serves_queries {
            app = app.merge(requests.measure(
                "tempo",
                tributary_query::http::tempo_router(traces.clone(), auth.clone()),
            ));
            app = app.merge(requests.measure("jaeger", tributary_query::http::jaeger_router(traces, auth.clone())));
        }
    }
    // The rules and alerts APIs answer (empty) without a ruler.
    let ruler = start_ruler(cfg, ingester.as_ref(), api_engine, logql_engine, &mut registry).await?;
    app = app.merge(requests.measure(
        "prometheus",
        tributary_query::ruler::router(ruler.clone(), auth.clone()),
    ));
    // The status APIs read the head where there is one (what is in memory now, as Prometheus
    // does), else what the query path reads, else the Parquet files.
    let status_source: Arc<dyn Source> = match (&ingester, query_source) {
        (Some(ing), _) => ing.head(),
        (None, Some(source)) => source,
        (None, None) => storage.source(),
    };
    let status_engine = Arc::new(Engine::new(status_source, cfg.query.clone()));
    let status_info = status::info(cfg, flags);
    app = app.merge(requests.measure(
        "status",
        tributary_query::http::status_router(status_engine, auth.clone(), status_info),
    ));
    app = app.merge(fleet::router(
        cfg.server.role,
        ingester.clone(),
        storage.clone(),
        auth.clone(),
    ));
    let registry = Arc::new(Mutex::new(registry));
    // Every 404/405 in the API's error shape; answers gzipped for clients that accept it
    // (Grafana, Prometheus scraping `/federate`). An answer already encoded (remote-read's
    // snappy) passes as it is.
    app = app
        .merge(telemetry::metrics_router(registry, refresh))
        .layer(axum::middleware::from_fn(tributary_query::http::unrouted_bodies))
        .layer(CompressionLayer::new().compress_when(DefaultPredicate::new().and(not_an_upgrade)));

    let otlp_app = ingester
        .as_ref()
        .map(|ing| tributary_ingest::http::otlp_router(ing.clone(), auth.clone()));
    if let (Some(grpc), Some(ing)) = (grpc, &ingester) {
        grpc.ready(ing.clone());
    }
    let flusher = ingester
        .as_ref()
        .map(|ing| tokio::spawn(ing.clone().run_flusher(stop_rx.clone())));
    // Other processes (ingesters, the compactor) commit files this one must see, and stop
    // seeing once compacted away.
    tokio::spawn(refresh_catalog(
        storage.clone(),
        cfg.storage.refresh_interval,
        stop_rx.clone(),
    ));
    if let Some(f) = fanout {
        tokio::spawn(f.keep_resolving(wait_for(stop_rx.clone())));
    }
    // Token rotation without a restart: the token file is polled for changes.
    tokio::spawn(auth.clone().watch(stop_rx.clone()));
    if let Some(r) = ruler {
        tokio::spawn(r.run(stop_rx.clone()));
    }
    let compactor = compaction.map(|c| tokio::spawn(c.run_schedule(stop_rx)));
    startup.started(app, otlp_app, ingester.clone());
    Ok(Started {
        flusher,
        compactor,
        ingester,
    })
}

/// The ruler, when this role evaluates rules and some are configured: it evaluates through
/// `engine` (all-in-one: its head and Parquet; the `ruler` role: every ingester's head through
/// `query.ingesters` and Parquet, as a querier reads) and writes what rules produce through an
/// ingester's one write path: its own (all-in-one), or the ingest tier's by remote-write.
async fn start_ruler(
    cfg: &Config,
    ingester: Option<&Arc<Ingester>>,
    engine: Option<Arc<Engine>>,
    logql: Option<Arc<LogqlEngine>>,
    registry: &mut Registry,
) -> Result<Option<Arc<tributary_query::ruler::Ruler>>, Error> {
    let (Some(engine), Some(logql), true) = (engine, logql, cfg.ruler.enabled()) else {
        return Ok(None);
    };
    let sink: Arc<dyn tributary_query::ruler::RuleSink> = match (cfg.server.role, ingester) {
        (Role::AllInOne, Some(ing)) => Arc::new(rule_sink::IngesterSink(ing.clone())),
        (Role::Ruler, None) => {
            tracing::info!(url = %cfg.ruler.remote_write_url, "writing rule output to the ingest tier");
            Arc::new(rule_sink::RemoteWriteSink::new(&cfg.ruler)?)
        }
        // Config validation refuses rule files in the other roles.
        _ => return Ok(None),
    };
    let ruler = tributary_query::ruler::Ruler::new(cfg.ruler.clone(), engine, logql, sink, registry)
        .await
        .map_err(Error::Ruler)?;
    Ok(Some(ruler))
}

/// Binds the OTLP/gRPC and the dedicated OTLP/HTTP ports (those configured) and serves them
/// until `stop`: gRPC through `Otlp::starting` (UNAVAILABLE until the ingester is handed over),
/// HTTP through `health::otlp_router` (503 until startup is over).
async fn otlp_receivers(
    cfg: &Config,
    auth: &Auth,
    tls: Option<&Tls>,
    startup: &Arc<health::Startup>,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Result<
    (
        Vec<tokio::task::JoinHandle<Result<(), Error>>>,
        Option<tributary_ingest::grpc::Otlp>,
    ),
    Error,
> {
    let mut servers = Vec::new();
    let mut grpc = None;
    if let Some(addr) = ServerConfig::optional_addr(&cfg.server.grpc_listen) {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        tracing::info!(addr = %listener.local_addr().map_err(Error::Serve)?, "OTLP/gRPC listening");
        let otlp = tributary_ingest::grpc::Otlp::starting(auth.clone(), &cfg.ingest);
        grpc = Some(otlp.clone());
        let stop = wait_for(stop.clone());
        let tls = tls.cloned();
        servers.push(tokio::spawn(async move {
            match tls {
                None => {
                    let incoming = tonic::transport::server::TcpIncoming::from(listener);
                    otlp.serve(incoming, stop).await
                }
                Some(tls) => {
                    let incoming = tls.incoming(listener, Protocol::Grpc).into_stream();
                    otlp.serve(incoming, stop).await
                }
            }
            .map_err(Error::from)
        }));
    }
    if let Some(addr) = ServerConfig::optional_addr(&cfg.server.otlp_http_listen) {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        tracing::info!(addr = %listener.local_addr().map_err(Error::Serve)?, "OTLP/HTTP listening");
        let otlp_app = telemetry::traced(health::otlp_router(startup.clone()));
        let stop = wait_for(stop.clone());
        let tls = tls.cloned();
        servers.push(tokio::spawn(async move {
            tls::serve_http(listener, tls.as_ref(), otlp_app, stop)
                .await
                .map_err(Error::Serve)
        }));
    }
    Ok((servers, grpc))
}

/// A protocol switch (Loki's websocket tail) has no body to compress, and a `Content-Encoding`
/// on it would confuse the client's handshake.
fn not_an_upgrade(status: StatusCode, _: Version, _: &HeaderMap, _: &Extensions) -> bool {
    status != StatusCode::SWITCHING_PROTOCOLS
}

/// The ingesters of `query.ingesters`, resolved once before serving; `failure` says what a read
/// does when one does not answer.
async fn fanout(q: &tributary_query::config::QueryConfig, failure: IngesterFailure) -> Result<Arc<Fanout>, Error> {
    let token = if q.ingester_token_file.as_os_str().is_empty() {
        None
    } else {
        let text = std::fs::read_to_string(&q.ingester_token_file).map_err(|source| Error::IngesterToken {
            path: q.ingester_token_file.clone(),
            source,
        })?;
        Some(text.trim().to_string())
    };
    let fanout = Fanout::new(FanoutConfig {
        ingesters: q.ingesters.clone(),
        timeout: q.ingester_timeout,
        failure,
        resolve_interval: q.ingester_resolve_interval,
        token,
    })
    .await;
    tracing::info!(ingesters = ?fanout.ingesters(), "reading the heads of ingesters");
    Ok(fanout)
}

async fn refresh_catalog(
    storage: Arc<Storage>,
    every: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        match storage.refresh().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(files = n, "loaded a newer manifest with new files"),
            Err(e) => tracing::warn!(error = %e, "loading a newer manifest failed"),
        }
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn wait_for(mut stop: tokio::sync::watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Serves `app` until SIGINT/SIGTERM, then stops accepting and gives the requests in flight
/// `grace` to finish. After it, the wait ends and shutdown goes on (flush the head, close the
/// WAL); the requests still running (a heavy query) are cancelled when `main` shuts the runtime
/// down, which drops their connection tasks and so the handlers' futures, and the query engines
/// stop the work behind a dropped future (their evaluation threads check for it).
async fn serve_until_signal(
    listener: TcpListener,
    tls: Option<Tls>,
    app: Router,
    grace: std::time::Duration,
) -> Result<(), Error> {
    let (signalled_tx, signalled_rx) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown_signal().await;
        let _ = signalled_tx.send(true);
    };
    // Once signalled, `axum::serve` waits for every connection's task, however long a query
    // runs; serving in a task of our own lets the grace period end that wait.
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(async move { tls::serve_http(listener, tls.as_ref(), app, signal).await });
    let outcome = tokio::select! {
        served = tasks.join_next() => served,
        () = async {
            wait_for(signalled_rx).await;
            tokio::time::sleep(grace).await;
        } => None,
    };
    match outcome {
        Some(Ok(served)) => served.map_err(Error::Serve),
        Some(Err(e)) => Err(Error::Serve(std::io::Error::other(e))),
        None => {
            tracing::warn!(
                grace = ?grace,
                "requests still running after server.shutdown_timeout: cancelling them"
            );
            tasks.abort_all();
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
