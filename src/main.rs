//! `frugal`: started by the shim with `jobstart({bin, "--log-file", …}, { rpc = true })`.
//! Stdout is the RPC channel: nothing else may ever be printed there.

use frugal::rpc::{forward_events, Handler};
use frugal::services::Services;
use frugal::settings::LogLevel;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

struct Args {
    log_file: Option<PathBuf>,
    log_level: String,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        log_file: None,
        log_level: "info".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--version" | "-V" => {
                // Not in RPC mode: a person or :checkhealth asked.
                println!("frugal {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "--log-file" => args.log_file = it.next().map(PathBuf::from),
            "--log-level" => args.log_level = it.next().unwrap_or_default(),
            "--help" | "-h" => {
                println!(
                    "frugal {}: the backend of frugal.nvim, started by Neovim.\n\
                     usage: frugal [--log-file PATH] [--log-level LEVEL]\n       frugal --version\n       \
                     frugal usage [--project DIR] [--all] [--json] [--data-dir DIR]",
                    env!("CARGO_PKG_VERSION")
                );
                return Ok(None);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(Some(args))
}

/// Logs to a daily-rotated file; the guard must live as long as the process. The log
/// directory is Neovim's `stdpath("log")`, shared with others: only frugal's own files in it
/// are made private (0600), never the directory.
fn init_logging(args: &Args) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let path = args.log_file.as_ref()?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty())?;
    let name = path.file_name()?;
    std::fs::create_dir_all(dir).ok()?;
    if let Ok(entries) = std::fs::read_dir(dir) {
        let prefix = name.to_string_lossy();
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(prefix.as_ref()) {
                let _ = frugal::settings::paths::private_file(&e.path());
            }
        }
    }
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix(name.to_string_lossy().into_owned())
        .max_log_files(7)
        .build(dir)
        .ok()?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    // A bad level is reported by `hello` (it is a `setup()` key); the default serves meanwhile.
    let level = LogLevel::parse(&args.log_level)
        .unwrap_or_default()
        .tracing();
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_max_level(level)
        .init();
    Some(guard)
}

fn main() {
    // Everything this process creates is private (directories 0700, files 0600): the ledger
    // and its -wal/-shm (made by SQLite), the catalogue cache, the logs, data_dir itself.
    #[cfg(unix)]
    // SAFETY: umask only sets this process's file mode mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    // `frugal usage …`: a person at a terminal, not Neovim; no RPC, no logging.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if argv.first().is_some_and(|a| a == "usage") {
        std::process::exit(frugal::usage::cli::run(&argv[1..]));
    }
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => return,
        Err(e) => {
            eprintln!("frugal: {e}");
            std::process::exit(2);
        }
    };
    let _guard = init_logging(&args);
    // One thread: the work is one stream at a time, and a multi-thread runtime handed each
    // read of it from worker to worker (wake-ups, spinning) for more CPU than the read itself.
    // SQLite runs on the blocking pool, as before, so nothing here waits on a disk.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("frugal: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(serve(args.log_file.clone()));
    // Leave at once: tokio's stdin reader thread would otherwise keep the runtime alive.
    drop(_guard);
    std::process::exit(code);
}

async fn serve(log_file: Option<PathBuf>) -> i32 {
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        pid = std::process::id(),
        "frugal started"
    );
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let services = Services::new(tx);
    let handler = Handler::new(services.clone(), log_file);
    let (reader, writer) = match frugal::stdio::open() {
        Ok(x) => x,
        Err(e) => {
            tracing::error!("cannot open the RPC channel: {e}");
            return 1;
        }
    };
    let (nvim, io) = nvim_rs::Neovim::new(reader.compat(), writer.compat_write(), handler);
    let io = tokio::spawn(io);
    tokio::spawn(forward_events(nvim, rx));
    let code = tokio::select! {
        ended = io => rpc_ended(ended),
        // Neovim stops its jobs with SIGTERM as it quits (SIGHUP: the terminal went away):
        // leave through the same door as a closed channel, not by the signal's default death.
        signal = stop_signal() => {
            tracing::info!("{signal}; exiting");
            0
        }
    };
    // Requests never sent (a question left open, a wait before a retry) are released now:
    // nothing was billed. First, before the wait below: Neovim SIGKILLs a job that outlives
    // its SIGTERM by 2 s.
    frugal::gate::release_unsent(services.settings.clock()).await;
    // A settlement written after its edit ended is finished before leaving (bounded: a ledger
    // locked by another process must not keep this one alive; an unsettled reservation is
    // reconciled at the next start).
    if tokio::time::timeout(Duration::from_secs(5), services.settings.background_done())
        .await
        .is_err()
    {
        tracing::warn!("exiting with a ledger write still under way");
    }
    code
}

/// The exit code once the RPC loop has ended.
fn rpc_ended(
    ended: Result<Result<(), Box<nvim_rs::error::LoopError>>, tokio::task::JoinError>,
) -> i32 {
    match ended {
        Ok(Ok(())) => 0,
        Ok(Err(e)) if e.is_channel_closed() => {
            tracing::info!("Neovim closed the channel; exiting");
            0
        }
        Ok(Err(e)) => {
            tracing::error!("RPC loop failed: {e}");
            1
        }
        Err(e) => {
            tracing::error!("RPC task failed: {e}");
            1
        }
    }
}

/// Resolves with the name of the first SIGTERM, SIGHUP or SIGINT; never, where they cannot be
/// listened to (the process then dies of them, and the next start releases what it left).
async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let listen = |kind| signal(kind).map_err(|e| tracing::warn!("cannot handle signals: {e}"));
        if let (Ok(mut term), Ok(mut hup), Ok(mut int)) = (
            listen(SignalKind::terminate()),
            listen(SignalKind::hangup()),
            listen(SignalKind::interrupt()),
        ) {
            return tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = hup.recv() => "SIGHUP",
                _ = int.recv() => "SIGINT",
            };
        }
    }
    std::future::pending().await
}
