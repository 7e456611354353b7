//! An in-process relay for PostgreSQL over TCP (issue #17).
//!
//! sqlx 0.9.0, the release sea-orm 2.0.4 uses, opens its PostgreSQL TCP sockets without
//! `TCP_NODELAY`. A query that sqlx writes in two pieces then waits for the server's delayed
//! ACK (about 40 ms on Linux) before the second piece leaves: over TCP, CreateRisk ran at 1% of
//! its Unix-socket rate with a p99 of 100 ms. The fix upstream is merged but not released.
//!
//! Until it is, [`crate::db::connect`] gives sqlx a Unix socket instead: a relay listens on
//! `.s.PGSQL.<port>` in a private (`0700`) temporary folder and, for each connection sqlx opens
//! there, opens one TCP connection to the real server with `TCP_NODELAY` (and keepalive) and
//! copies bytes both ways. sqlx keeps the URL's host, user, password, database, options and
//! `sslmode`: a TLS session is negotiated with the real server through the relay, end to end,
//! and its certificate is checked against the URL's host exactly as without the relay (the
//! relay never sees plaintext of a TLS connection). Nothing is downgraded.
//!
//! The relay lives as long as the pool: it stops accepting, and removes its folder, when the
//! pool closes or is dropped. `ASSURANCE_PG_TCP_RELAY=off` turns it off (for a sqlx release
//! with the fix).

use std::{
    io,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use sqlx::postgres::PgConnectOptions;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UnixListener, UnixStream},
    sync::oneshot,
};

/// The environment variable that turns the relay off (`off`) or leaves it on (`auto`).
pub const RELAY_ENV: &str = "ASSURANCE_PG_TCP_RELAY";

/// How long the relay waits for a TCP connection to the server. Shorter than the pool's own
/// connect timeout, so an unreachable host is reported as such, not as a pool time-out.
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle time before the first keepalive probe, and the time between probes.
const KEEPALIVE_TIME: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// How long a refused client has to send its start-up message before it is just closed.
const REFUSAL_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The PostgreSQL `SSLRequest` and `GSSENCRequest` codes (the version field of those messages).
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;

/// TCP connections opened by relays of this process, ever.
static RELAYED: AtomicU64 = AtomicU64::new(0);

/// How many TCP connections the relays of this process have opened to servers: a way for
/// tests (and a curious operator with a debugger) to see that the relay is in use.
pub fn relayed_connections() -> u64 {
    RELAYED.load(Ordering::Relaxed)
}

/// Whether PostgreSQL TCP connections go through the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayMode {
    /// Through the relay when the URL names a TCP host (the default).
    Auto,
    /// Never: sqlx opens its TCP connections itself.
    Off,
}

impl RelayMode {
    /// Parses `auto` or `off` (case-insensitive; empty means `auto`).
    pub fn parse(value: &str) -> Result<RelayMode, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(RelayMode::Auto),
            "off" => Ok(RelayMode::Off),
            other => Err(format!("{RELAY_ENV}={other}: expected auto or off")),
        }
    }

    /// The mode [`RELAY_ENV`] sets; `auto` when it is unset.
    pub fn from_env() -> Result<RelayMode, String> {
        match std::env::var(RELAY_ENV) {
            Ok(value) => RelayMode::parse(&value),
            Err(std::env::VarError::NotPresent) => Ok(RelayMode::Auto),
            Err(e) => Err(format!("{RELAY_ENV}: {e}")),
        }
    }
}

/// The TCP server a relay connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The TCP server behind a PostgreSQL URL as sqlx reads it (host in the authority or `host=`,
/// `hostaddr=`, port in the authority or `port=`, and the `PG*` environment defaults), or
/// `None` when sqlx would not open a TCP connection: a Unix socket (`host=/dir`, a
/// percent-encoded path as host), a URL that is not PostgreSQL's or that sqlx refuses (it
/// reports its own error), or several hosts (`a,b`, which sqlx does not support either).
pub fn relay_target(url: &str) -> Option<Target> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return None;
    }
    let options: PgConnectOptions = url.parse().ok()?;
    target_of(&options)
}

fn target_of(options: &PgConnectOptions) -> Option<Target> {
    let host = options.get_host();
    if options.get_socket().is_some() || host.starts_with('/') || host.is_empty() {
        return None;
    }
    if host.contains(',') {
        return None;
    }
    // An IPv6 literal in the authority keeps its brackets in sqlx's options.
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some(Target {
        host: host.to_string(),
        port: options.get_port(),
    })
}

/// `options` pointed at a relay's folder: only the socket changes. The host stays, so TLS
/// (negotiated end to end through the relay) verifies the server's certificate against it;
/// the port stays, naming the socket file `.s.PGSQL.<port>` in the folder.
pub fn through_relay(options: PgConnectOptions, dir: &Path) -> PgConnectOptions {
    options.socket(dir)
}

/// A running relay: a Unix listener in a private folder, removed when the relay is dropped.
pub struct PgRelay {
    dir: PathBuf,
    target: Target,
    last_error: Arc<Mutex<Option<String>>>,
    stop: Option<oneshot::Sender<()>>,
}

impl PgRelay {
    /// Starts a relay to `target` on the current tokio runtime.
    pub fn start(target: Target) -> Result<PgRelay, String> {
        let dir = private_temp_dir()?;
        let socket = dir.join(format!(".s.PGSQL.{}", target.port));
        let listener = match UnixListener::bind(&socket) {
            Ok(listener) => listener,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(format!(
                    "PostgreSQL relay cannot listen on {}: {e}",
                    socket.display()
                ));
            }
        };
        let last_error = Arc::new(Mutex::new(None));
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(accept_loop(
            listener,
            target.clone(),
            last_error.clone(),
            stopped,
        ));
        tracing::debug!(target = %target, dir = %dir.display(), "PostgreSQL TCP relay started");
        Ok(PgRelay {
            dir,
            target,
            last_error,
            stop: Some(stop),
        })
    }

    /// The folder sqlx is given as its socket directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The last failure to reach the server over TCP, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// Keeps the relay running until `until` completes (the pool's close event), then stops it.
    pub fn run_until(self, until: impl std::future::Future<Output = ()> + Send + 'static) {
        tokio::spawn(async move {
            until.await;
            drop(self);
        });
    }
}

impl Drop for PgRelay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Connections already relayed keep their sockets; only the listening name goes.
        let _ = std::fs::remove_dir_all(&self.dir);
        tracing::debug!(target = %self.target, "PostgreSQL TCP relay stopped");
    }
}

/// A new folder readable by the owner only, under the temporary directory. `mkdir` fails when
/// the name exists, so a folder someone else made first is never used.
fn private_temp_dir() -> Result<PathBuf, String> {
    let base = std::env::temp_dir();
    remove_dead_relay_dirs(&base);
    let mut last = String::new();
    for _ in 0..8 {
        let dir = base.join(format!(
            "{RELAY_DIR_PREFIX}{}-{}",
            std::process::id(),
            &uuid::Uuid::now_v7().simple().to_string()[16..]
        ));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        match builder.create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e.to_string(),
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
        }
    }
    Err(format!(
        "cannot create a relay folder in {}: {last}",
        base.display()
    ))
}

/// The name of a relay's folder: this prefix, the owning process id, a dash, random hex.
const RELAY_DIR_PREFIX: &str = "assurance-pg-";

/// Removes the relay folders in `base` of processes that no longer run (killed before they
/// could remove their own). Only where `/proc` tells which processes run; a folder whose process
/// id is alive (even reused by another program) is left alone.
fn remove_dead_relay_dirs(base: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = dead_owner(&name.to_string_lossy()) else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The process id in a relay folder's name.
fn dead_owner(name: &str) -> Option<u32> {
    let (pid, _) = name.strip_prefix(RELAY_DIR_PREFIX)?.split_once('-')?;
    pid.parse().ok()
}

async fn accept_loop(
    listener: UnixListener,
    target: Target,
    last_error: Arc<Mutex<Option<String>>>,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    tokio::spawn(relay_one(client, target.clone(), last_error.clone()));
                }
                Err(e) => {
                    // Out of descriptors, most likely: back off instead of spinning.
                    tracing::warn!(error = %e, "PostgreSQL relay cannot accept");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// Relays one client connection until either side closes it.
async fn relay_one(mut client: UnixStream, target: Target, last_error: Arc<Mutex<Option<String>>>) {
    match connect_tcp(&target).await {
        Ok(mut server) => {
            RELAYED.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut last) = last_error.lock() {
                *last = None;
            }
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        }
        Err(e) => {
            let reason = format!("PostgreSQL at {target} is unreachable: {e}");
            tracing::warn!("{reason}");
            if let Ok(mut last) = last_error.lock() {
                *last = Some(reason.clone());
            }
            refuse(
                client,
                e.kind() == io::ErrorKind::ConnectionRefused,
                &reason,
            )
            .await;
        }
    }
}

/// A TCP connection to `target` with `TCP_NODELAY` and keepalive.
pub async fn connect_tcp(target: &Target) -> io::Result<TcpStream> {
    let stream = tokio::time::timeout(
        TCP_CONNECT_TIMEOUT,
        TcpStream::connect((target.host.as_str(), target.port)),
    )
    .await
    .map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no answer in {}s", TCP_CONNECT_TIMEOUT.as_secs()),
        )
    })??;
    stream.set_nodelay(true)?;
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_TIME)
        .with_interval(KEEPALIVE_INTERVAL);
    socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive)?;
    Ok(stream)
}

/// Answers a client whose server is unreachable the way a server that cannot take it would:
/// `N` to an `SSLRequest`, then an `ErrorResponse` to its start-up message. A refused
/// connection is reported as `57P03` (cannot connect now), which sqlx retries until its
/// connect deadline exactly as it retries a refused TCP connection of its own; anything else
/// as `08001`, which fails the connection at once. A client that insisted on TLS closes after
/// the `N`; the reason is then in the log and in [`PgRelay::last_error`].
async fn refuse(mut client: UnixStream, transient: bool, reason: &str) {
    let answer = async {
        let mut first = read_message(&mut client).await?;
        while matches!(request_code(&first), Some(SSL_REQUEST | GSSENC_REQUEST)) {
            client.write_all(b"N").await?;
            first = read_message(&mut client).await?;
        }
        let code = if transient { "57P03" } else { "08001" };
        client.write_all(&error_response(code, reason)).await?;
        client.shutdown().await
    };
    let _ = tokio::time::timeout(REFUSAL_READ_TIMEOUT, answer).await;
}

/// One untyped front-end message (the start-up kind: a length, then the body).
async fn read_message(client: &mut UnixStream) -> io::Result<Vec<u8>> {
    let len = client.read_u32().await? as usize;
    if !(8..=10_000).contains(&len) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "start-up length",
        ));
    }
    let mut body = vec![0; len - 4];
    client.read_exact(&mut body).await?;
    Ok(body)
}

/// The request code of an 8-byte start-up message body, if it is one.
fn request_code(body: &[u8]) -> Option<u32> {
    let code: [u8; 4] = body.try_into().ok()?;
    Some(u32::from_be_bytes(code))
}

/// A PostgreSQL `ErrorResponse` of severity FATAL.
fn error_response(code: &str, message: &str) -> Vec<u8> {
    let mut fields = Vec::new();
    for (tag, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', code),
        (b'M', message),
    ] {
        fields.push(tag);
        fields.extend(value.bytes().filter(|b| *b != 0));
        fields.push(0);
    }
    fields.push(0);
    let mut out = vec![b'E'];
    out.extend(((fields.len() + 4) as u32).to_be_bytes());
    out.extend(fields);
    out
}

#[cfg(test)]
#[path = "pg_relay_tests.rs"]
mod tests;
