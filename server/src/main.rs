//! The `arbor` binary: serves the PostgreSQL wire protocol over Arbor's
//! TSQL and SQL surfaces. `arbor` alone serves `./data` on 127.0.0.1:6667.

mod config;
mod copy;
mod errors;
mod text;
mod wire;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::wire::{Connection, InFlight, Shared};

#[derive(Parser, Debug)]
#[command(name = "arbor", version, about = "Arbor: an IoTDB-style time-series database speaking the PostgreSQL wire protocol")]
struct Args {
    /// TOML configuration file (see server/arbor.example.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory (default ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Listen address (default 127.0.0.1).
    #[arg(long)]
    host: Option<String>,
    /// Listen port (default 6667; 0 picks a free port and prints it).
    #[arg(long)]
    port: Option<u16>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ARBOR_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let mut config = match &args.config {
        Some(path) => match Config::from_file(path) {
            Ok(c) => c,
            Err(e) => {
                error!("{e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    if let Some(d) = args.data_dir {
        config.server.data_dir = d;
    }
    if let Some(h) = args.host {
        config.server.host = h;
    }
    if let Some(p) = args.port {
        config.server.port = p;
    }
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::from(1)
        }
    }
}

fn run(config: Config) -> Result<(), String> {
    // Two runtimes: one for sockets, one for statements, so a heavy query
    // cannot starve other connections' network I/O.
    let network = tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("arbor-net").enable_all().build().map_err(|e| e.to_string())?;
    let query = tokio::runtime::Builder::new_multi_thread().thread_name("arbor-query").enable_all().build().map_err(|e| e.to_string())?;

    info!(data_dir = %config.server.data_dir.display(), "opening instance");
    let instance = sql::Instance::open(config.instance_config()).map_err(|e| format!("cannot open {}: {e}", config.server.data_dir.display()))?;
    let shared = Arc::new(Shared {
        instance: instance.clone(),
        config: config.clone(),
        in_flight: InFlight::default(),
        query_runtime: query.handle().clone(),
        pid_generator: Default::default(),
        connections: Arc::new(pgwire::api::ConnectionManager::new()),
    });
    let result = network.block_on(serve(shared.clone()));
    info!("flushing memtables");
    if let Err(e) = instance.close() {
        error!("flush at shutdown failed: {e}");
        return Err(e.to_string());
    }
    query.shutdown_timeout(Duration::from_secs(5));
    info!("stopped");
    result
}

async fn serve(shared: Arc<Shared>) -> Result<(), String> {
    let addr = format!("{}:{}", shared.config.server.host, shared.config.server.port);
    let listener = TcpListener::bind(&addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    info!("listening on {local}");
    // Tools (the sqllogictest runner) read the port from this line.
    println!("arbor listening on {local}");
    let limit = Arc::new(Semaphore::new(shared.config.server.max_connections));
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(|e| e.to_string())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => { warn!("accept failed: {e}"); continue; }
                };
                let _ = socket.set_nodelay(true);
                let Ok(permit) = limit.clone().try_acquire_owned() else {
                    warn!(%peer, "too many connections");
                    drop(socket);
                    continue;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match Connection::new(shared) {
                        Ok(conn) => {
                            if let Err(e) = pgwire::tokio::process_socket(socket, None, Arc::new(conn)).await {
                                info!(%peer, "connection ended: {e}");
                            }
                        }
                        Err(e) => error!(%peer, "cannot start a session: {e}"),
                    }
                });
            }
            _ = tokio::signal::ctrl_c() => { info!("SIGINT: shutting down"); break; }
            _ = sigterm.recv() => { info!("SIGTERM: shutting down"); break; }
        }
    }
    drop(listener);
    // Finish statements already running, then flush.
    if tokio::time::timeout(Duration::from_secs(60), shared.in_flight.wait_idle()).await.is_err() {
        warn!("statements still running after 60 s; shutting down anyway");
    }
    Ok(())
}
