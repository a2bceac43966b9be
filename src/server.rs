//! Wiring the planes into one HTTP server, and running it until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use flo2_console::{ConsoleSettings, ConsoleState, SessionTokens};
use flo2_gateway::SpillSettings;
use flo2_gateway::UpstreamSettings;
use flo2_gateway::{GatewaySettings, GatewayState};
use flo2_store::{PoolOptions, Store};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::serving::{ConnectionLimits, ServingThreads};
use crate::{keyring, StartError};

/// Which planes a process serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Both planes on one port: the embedded default and the self-hosted setup.
    Serve,
    /// The data plane alone (`/v1`), for horizontally scaled replicas.
    Gateway,
    /// The control plane alone (`/api/v1` and the pages).
    Console,
}

/// A started server.
pub struct RunningServer {
    /// The address it listens on (useful with port 0).
    pub addr: SocketAddr,
    /// The database handle, for tests and admin work.
    pub store: Store,
    /// Stops the HTTP server (graceful: in-flight requests finish).
    cancel: CancellationToken,
    /// Stops background writers, only after the server has drained, so records produced by
    /// the last requests are still written.
    background: CancellationToken,
    tracker: TaskTracker,
    serving: ServingThreads,
    grace: std::time::Duration,
}

/// Opens the database the configuration names, creating the embedded data directory if needed,
/// and applies migrations when configured to.
pub async fn open_store(config: &Config) -> Result<Store, StartError> {
    if config.database_url.is_none() && !config.data_dir.exists() {
        create_private_dir(&config.data_dir)?;
    }
    let store = Store::connect(
        &config.effective_database_url(),
        &PoolOptions {
            max_connections: config.db_max_connections,
            ..PoolOptions::default()
        },
    )
    .await?;
    if config.migrate_on_start {
        store.migrate().await?;
    }
    Ok(store)
}

/// Creates the data directory readable by flo2's user only: it holds the database and, in the
/// embedded default, the master key.
fn create_private_dir(dir: &std::path::Path) -> Result<(), StartError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| StartError::DataDir(format!("cannot create {}: {e}", dir.display())))
}

/// Starts serving `mode` as configured. Returns once the listener is bound.
pub async fn start(config: &Config, mode: Mode) -> Result<RunningServer, StartError> {
    let store = open_store(config).await?;
    let keyring = Arc::new(keyring::load(config)?);
    keyring::check_against(&store, &keyring).await?;

    let cancel = CancellationToken::new();
    let background = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mut app = Router::new();
    let mut key_tester: Option<Arc<dyn flo2_console::key_test::KeyTester>> = None;
    if mode != Mode::Console {
        let gateway = GatewayState::new(
            store.clone(),
            Arc::clone(&keyring),
            GatewaySettings {
                change_poll_interval: config.change_poll,
                key_touch_interval: config.key_touch_interval,
                upstream: UpstreamSettings {
                    allow_private: config.allow_private_upstreams,
                    request_timeout: config.upstream_timeout,
                    ..UpstreamSettings::default()
                },
                max_body_bytes: config.gateway_max_body_bytes,
                usage_spill: SpillSettings {
                    path: config
                        .usage_spill_dir
                        .clone()
                        .unwrap_or_else(|| config.data_dir.clone())
                        .join("usage-spill.jsonl"),
                    memory_records: config.usage_memory_records,
                    gather: config.usage_gather,
                },
                health: flo2_gateway::HealthSettings {
                    failures: config.breaker_failures,
                    open_for: config.breaker_open,
                    hedge: flo2_gateway::BudgetRule {
                        percent: config.hedge_budget_percent,
                        floor_per_sec: config.hedge_budget_floor_per_sec,
                    },
                    ..flo2_gateway::HealthSettings::default()
                },
                admission: flo2_gateway::AdmissionSettings {
                    max_inflight: config.max_inflight,
                    per_org_percent: config.max_inflight_per_org_percent,
                },
                stream_idle_timeout: config.stream_idle_timeout,
                ..GatewaySettings::default()
            },
        )?;
        gateway.spawn_background(&tracker, &background);
        key_tester = Some(Arc::new(KeyTester(gateway.clone())));
        app = app.merge(flo2_gateway::router(gateway));
    }
    if mode != Mode::Gateway {
        let ttl = chrono::Duration::from_std(config.session_ttl)
            .map_err(|_| StartError::DataDir("FLO2_SESSION_TTL_SECS is too large".into()))?;
        let console = ConsoleState {
            store: store.clone(),
            tokens: SessionTokens::new(&keyring.derive_subkeys("console-session"), ttl),
            guard: Arc::new(flo2_console::web::guard::Guard::new(
                keyring
                    .derive_subkeys("console-csrf")
                    .first()
                    .copied()
                    .unwrap_or_default(),
            )),
            key_tester: key_tester.clone(),
            keyring: Arc::clone(&keyring),
            settings: Arc::new(ConsoleSettings {
                public_url: config.effective_public_url(),
                invite_ttl: chrono::Duration::from_std(config.invite_ttl)
                    .unwrap_or(chrono::Duration::days(7)),
                max_body_bytes: config.api_max_body_bytes,
                allow_private_upstreams: config.allow_private_upstreams,
                trusted_proxies: config.trusted_proxies.clone(),
            }),
        };
        app = app
            .merge(flo2_console::router(console).map_err(|e| StartError::DataDir(e.to_string()))?);
    }
    // The plain 404 and 405 answers carry the console's security headers too.
    let https = flo2_console::is_https(&config.effective_public_url());
    let app = app
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz).with_state(store.clone()))
        .fallback(move |uri: Uri, headers: HeaderMap| async move {
            secured(fallback(uri, &headers), https)
        })
        .method_not_allowed_fallback(move |uri: Uri, headers: HeaderMap| async move {
            secured(method_not_allowed(uri, &headers), https)
        });

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError::Listen(config.listen, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Listen(config.listen, e))?;
    let threads = config.worker_threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let limits = ConnectionLimits {
        header_read_timeout: config.header_read_timeout,
        body_idle_timeout: config.body_idle_timeout,
        max_connections: config.max_connections,
    };
    let serving = ServingThreads::start(listener, app, threads, limits, &cancel)
        .map_err(|e| StartError::Listen(config.listen, e))?;
    tracing::info!(%addr, ?mode, database = ?store.dialect(), "flo2 is listening");
    Ok(RunningServer {
        addr,
        store,
        cancel,
        background,
        tracker,
        serving,
        grace: config.shutdown_grace,
    })
}

impl RunningServer {
    /// Stops accepting connections, lets in-flight requests finish (up to the grace period),
    /// drains background work (pending writes are flushed), and closes the database.
    pub async fn shutdown(self) {
        let mut serving = self.serving;
        self.cancel.cancel();
        if tokio::time::timeout(self.grace, serving.stopped())
            .await
            .is_err()
        {
            tracing::warn!("in-flight requests did not finish within the grace period");
        }
        self.background.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        self.store.close().await;
        // Only now: database connections opened on the serving threads use their runtimes.
        serving.release().await;
        tracing::info!("flo2 stopped");
    }

    /// Serves until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run_until_signal(self) {
        wait_for_signal().await;
        tracing::info!("shutting down");
        self.shutdown().await;
    }
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the database answers and its schema is this binary's; otherwise 503 with the
/// reason, telling an outage ("database unreachable") from a schema to migrate.
async fn readyz(State(store): State<Store>) -> Response {
    let reason = match store.ready().await {
        Ok(()) => return Json(json!({"status": "ready"})).into_response(),
        Err(err @ flo2_store::StoreError::PendingMigrations) => err.to_string(),
        Err(err) if err.is_unavailable() => {
            tracing::warn!(error = %err, "not ready: the database is unreachable");
            "database unreachable".to_owned()
        }
        Err(err) => {
            tracing::error!(error = %err, "not ready: the readiness query failed");
            "database error; see the server log".to_owned()
        }
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(
            axum::http::header::RETRY_AFTER,
            flo2_console::error::OUTAGE_RETRY_AFTER
                .as_secs()
                .to_string(),
        )],
        Json(json!({"status": "unavailable", "reason": reason})),
    )
        .into_response()
}

fn secured(mut response: Response, https: bool) -> Response {
    flo2_console::security_headers::apply(response.headers_mut(), https);
    response
}

fn fallback(uri: Uri, headers: &HeaderMap) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") {
        flo2_console::not_found().into_response()
    } else if path == "/v1" || path.starts_with("/v1/") {
        flo2_gateway::not_found(path, headers).into_response()
    } else {
        (StatusCode::NOT_FOUND, "not found\n").into_response()
    }
}

fn method_not_allowed(uri: Uri, headers: &HeaderMap) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") {
        flo2_console::method_not_allowed().into_response()
    } else if path.starts_with("/v1/") {
        flo2_gateway::method_not_allowed(path, headers).into_response()
    } else {
        (StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n").into_response()
    }
}

/// The dashboard's provider-key test, run by the data plane in this process.
struct KeyTester(flo2_gateway::GatewayState);

impl flo2_console::key_test::KeyTester for KeyTester {
    fn test(
        &self,
        org: flo2_core::OrgId,
        credential: flo2_core::CredentialId,
    ) -> flo2_console::key_test::BoxFuture<'_, Result<flo2_console::key_test::KeyTestOutcome, String>>
    {
        Box::pin(async move {
            let r = self
                .0
                .test_credential(org, credential)
                .await
                .map_err(|e| e.to_string())?;
            Ok(flo2_console::key_test::KeyTestOutcome {
                ok: r.ok,
                model: r.model,
                status: r.status,
                latency_ms: r.latency_ms,
                detail: r.detail,
                cost_usd: r.cost_usd,
            })
        })
    }
}
