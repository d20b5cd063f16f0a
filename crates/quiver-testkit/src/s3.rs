//! [`S3Server`], an S3-compatible HTTP server on a free loopback port, and [`S3Settings`],
//! what an S3 client needs to reach it.
//!
//! The server is `s3s-fs` (objects are files in a temporary folder, a bucket is a folder in
//! it) behind the `s3s` protocol layer (routing, XML, SigV4 signature checks), served by hyper
//! on a thread of its own with its own tokio runtime. Its own runtime because the server must
//! outlive whatever runtime a test happens to use, and keep serving while a test thread
//! blocks (for example waiting for a child process, see [`crate::child`]).
//!
//! Two fixes over plain `s3s-fs`, made in front of it by [`S3Front`], where it departs from
//! S3 in ways Quiver's code meets:
//! - Its conditional create (`PUT` with `If-None-Match: *`) first checks that the file does
//!   not exist, then renames the new file into place. Another request can slip between the
//!   two steps, so two racing creates can both succeed, where S3 lets exactly one win.
//!   Quiver's registry relies on that for its compare-and-swap, so a conditional create runs
//!   alone: no other request that changes objects runs beside it (plain writes still run in
//!   parallel with each other, and reads with everything).
//! - A `GET` or `HEAD` of a key that is a "folder" (`lake/trips` when `lake/trips/a.parquet`
//!   exists) answers 500, which clients retry for seconds before failing; S3 answers 404
//!   (no such key), and DataFusion then lists the key as a prefix. The front answers 404.

use std::future::Future;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{HttpError, HttpResponse};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// The region the server reports and the settings name. Any name works (the server checks
/// signatures with the region the client signed for); this one is S3's default.
pub const REGION: &str = "us-east-1";

/// Credentials the server accepts. Fixed: the server only listens on loopback and lives for
/// one test, and a request signed with other keys is rejected, as S3 would.
const ACCESS_KEY_ID: &str = "quiver-testkit";
const SECRET_ACCESS_KEY: &str = "quiver-testkit-secret";

/// How long stopping the server waits for file operations still under way.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Everything an S3 client needs to reach a server: endpoint, region and credentials.
///
/// A test that drives Quiver through its environment-based configuration passes
/// [`S3Settings::env`] to a child process ([`crate::child::run_test_with_env`]); the child
/// gets the same settings back with [`S3Settings::from_env`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Settings {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl S3Settings {
    /// The `AWS_*` variables that make `AmazonS3Builder::from_env()` (what Quiver uses for
    /// `s3://` URLs) talk to this server: endpoint, plain HTTP allowed, region, credentials,
    /// and path-style requests (`http://127.0.0.1:port/bucket/key`, as a loopback address
    /// has no per-bucket host names).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT", self.endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_REGION", self.region.as_str()),
            ("AWS_ACCESS_KEY_ID", self.access_key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key.as_str()),
            ("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "false"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Reads back the settings [`S3Settings::env`] wrote into this process's environment.
    ///
    /// # Errors
    /// [`Error::Env`] when a variable is missing.
    pub fn from_env() -> Result<Self> {
        let var = |name: &str| {
            std::env::var(name).map_err(|e| {
                Error::Env(format!(
                    "{name}: {e}; run this test through quiver_testkit::child::run_test_with_env \
                     with an S3Server's env()"
                ))
            })
        };
        Ok(S3Settings {
            endpoint: var("AWS_ENDPOINT")?,
            region: var("AWS_REGION")?,
            access_key_id: var("AWS_ACCESS_KEY_ID")?,
            secret_access_key: var("AWS_SECRET_ACCESS_KEY")?,
        })
    }

    /// An S3 client for `bucket`, configured explicitly (it reads no environment variable).
    ///
    /// # Errors
    /// [`Error::ObjectStore`] when the client cannot be built (a malformed endpoint).
    pub fn store(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
        let store = AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_region(&self.region)
            .with_access_key_id(&self.access_key_id)
            .with_secret_access_key(&self.secret_access_key)
            .with_virtual_hosted_style_request(false)
            .with_bucket_name(bucket)
            .build()?;
        Ok(Arc::new(store))
    }

    /// Writes one object with a plain (overwriting) PUT.
    ///
    /// # Errors
    /// [`Error::ObjectStore`] for a key that is not a valid object path or a failed request
    /// (for example a bucket that does not exist).
    pub async fn put_object(&self, bucket: &str, key: &str, bytes: impl Into<PutPayload>) -> Result<()> {
        let path = ObjectPath::parse(key).map_err(object_store::Error::from)?;
        self.store(bucket)?.put(&path, bytes.into()).await?;
        Ok(())
    }

    /// Uploads every file below the local folder `dir` to `bucket`, keyed
    /// `prefix/<path relative to dir>` (with `/` separators), and returns the keys written,
    /// sorted. An empty `prefix` puts the files at the bucket's root.
    ///
    /// # Errors
    /// [`Error::Io`] when the folder cannot be read, [`Error::ObjectStore`] when an upload fails.
    pub async fn upload_dir(&self, bucket: &str, prefix: &str, dir: &Path) -> Result<Vec<String>> {
        let mut files = Vec::new();
        collect_files(dir, dir, &mut files)?;
        files.sort();
        let store = self.store(bucket)?;
        let prefix = prefix.trim_matches('/');
        let mut keys = Vec::with_capacity(files.len());
        for relative in files {
            let key = if prefix.is_empty() { relative.clone() } else { format!("{prefix}/{relative}") };
            let local = dir.join(&relative);
            let bytes = tokio::fs::read(&local).await.map_err(|e| Error::io(local.display(), e))?;
            let path = ObjectPath::parse(&key).map_err(object_store::Error::from)?;
            store.put(&path, bytes.into()).await?;
            keys.push(key);
        }
        Ok(keys)
    }
}

/// Relative paths (with `/`) of every file below `dir`.
fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir.display(), e))?;
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir.display(), e))?.path();
        if path.is_dir() {
            collect_files(root, &path, out)?;
        } else {
            let relative = path.strip_prefix(root).map_err(|e| {
                Error::io(path.display(), std::io::Error::other(format!("not below {}: {e}", root.display())))
            })?;
            let parts: Vec<String> =
                relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            out.push(parts.join("/"));
        }
    }
    Ok(())
}

/// An S3-compatible server on `127.0.0.1:<free port>`, serving a temporary folder, until it is
/// dropped. See the module docs for what it is made of.
///
/// ```no_run
/// # async fn demo() -> quiver_testkit::Result<()> {
/// use quiver_testkit::S3Server;
///
/// let server = S3Server::start()?;
/// server.create_bucket("lake")?;
/// server.put_object("lake", "raw/a.csv", b"id,ts\n1,2026-01-01 00:00:00\n".to_vec()).await?;
/// let store = server.store("lake")?; // an object_store S3 client, talking HTTP to the server
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct S3Server {
    settings: S3Settings,
    /// Stops the accept loop when sent (or dropped).
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The buckets' folder; removed after the server thread has ended (field order).
    root: tempfile::TempDir,
}

impl S3Server {
    /// Starts a server with no bucket, listening on a free loopback port.
    ///
    /// Synchronous on purpose: binding the socket and starting the server thread take a
    /// millisecond or so, and a plain `#[test]` can call it as well as an async one. When it
    /// returns, the server is accepting connections.
    ///
    /// # Errors
    /// [`Error::Start`] when the temporary folder, the socket, the runtime or the thread
    /// cannot be created.
    pub fn start() -> Result<Self> {
        fn fail(what: &str, e: &dyn std::fmt::Display) -> Error {
            Error::Start(format!("{what}: {e}"))
        }
        let root = tempfile::Builder::new()
            .prefix("quiver-s3-")
            .tempdir()
            .map_err(|e| fail("creating the temporary folder", &e))?;
        let fs = s3s_fs::FileSystem::new(root.path())
            .map_err(|e| Error::Start(format!("s3s-fs over {}: {e:?}", root.path().display())))?;
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY_ID, SECRET_ACCESS_KEY));
        let service = S3Front {
            s3: builder.build(),
            root: Arc::new(root.path().to_path_buf()),
            writes: Arc::default(),
        };

        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| fail("binding 127.0.0.1:0", &e))?;
        let address = listener.local_addr().map_err(|e| fail("reading the bound address", &e))?;
        listener.set_nonblocking(true).map_err(|e| fail("making the socket non-blocking", &e))?;
        let (stop, stopped) = oneshot::channel();
        let (ready, readiness) = std::sync::mpsc::channel();
        // The runtime is built, used and dropped on the server thread only: dropping a
        // runtime inside another one's context panics, and a caller may be async.
        let thread = std::thread::Builder::new()
            .name(format!("quiver-s3-{}", address.port()))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("quiver-s3-server")
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready.send(Err(fail("building the server runtime", &e)));
                        return;
                    }
                };
                let listener = {
                    let _context = runtime.enter(); // registering the socket needs its reactor
                    TcpListener::from_std(listener)
                };
                match listener {
                    Ok(listener) => {
                        let _ = ready.send(Ok(()));
                        runtime.block_on(serve(listener, service, stopped));
                    }
                    Err(e) => {
                        let _ = ready.send(Err(fail("registering the socket", &e)));
                    }
                }
                runtime.shutdown_timeout(STOP_GRACE);
            })
            .map_err(|e| fail("spawning the server thread", &e))?;
        // Waits for the runtime to be built (a millisecond or so).
        match readiness.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(Error::Start("the server thread ended before it was ready".into())),
        }
        let settings = S3Settings {
            endpoint: format!("http://{address}"),
            region: REGION.to_string(),
            access_key_id: ACCESS_KEY_ID.to_string(),
            secret_access_key: SECRET_ACCESS_KEY.to_string(),
        };
        Ok(S3Server { settings, stop: Some(stop), thread: Some(thread), root })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.settings.endpoint
    }

    /// Endpoint, region and credentials of this server.
    pub fn settings(&self) -> &S3Settings {
        &self.settings
    }

    /// The `AWS_*` variables for this server; see [`S3Settings::env`].
    pub fn env(&self) -> Vec<(String, String)> {
        self.settings.env()
    }

    /// An explicitly configured S3 client for `bucket`; see [`S3Settings::store`].
    ///
    /// # Errors
    /// See [`S3Settings::store`].
    pub fn store(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
        self.settings.store(bucket)
    }

    /// Creates an empty bucket.
    ///
    /// Done on the server's side: a bucket of `s3s-fs` is a folder under its root, and making
    /// that folder is exactly what its `CreateBucket` does. (Over HTTP it would need a request
    /// the `object_store` client cannot send.)
    ///
    /// # Errors
    /// [`Error::Bucket`] for a name S3 rejects (3 to 63 lowercase letters, digits, `-` and
    /// `.`, starting and ending with a letter or digit) or a bucket that exists already.
    pub fn create_bucket(&self, name: &str) -> Result<()> {
        let bucket_error =
            |reason: &str| Error::Bucket { name: name.to_string(), reason: reason.to_string() };
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
        let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !(3..=63).contains(&name.len())
            || !name.chars().all(allowed)
            || !edge(name.chars().next())
            || !edge(name.chars().last())
        {
            return Err(bucket_error(
                "not a valid S3 bucket name (3 to 63 lowercase letters, digits, '-' and '.', \
                 starting and ending with a letter or digit)",
            ));
        }
        let path = self.root.path().join(name);
        match std::fs::create_dir(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(bucket_error("exists already")),
            Err(e) => Err(Error::io(path.display(), e)),
        }
    }

    /// Writes one object over HTTP; see [`S3Settings::put_object`].
    ///
    /// # Errors
    /// See [`S3Settings::put_object`].
    pub async fn put_object(&self, bucket: &str, key: &str, bytes: impl Into<PutPayload>) -> Result<()> {
        self.settings.put_object(bucket, key, bytes).await
    }

    /// Uploads a local folder over HTTP; see [`S3Settings::upload_dir`].
    ///
    /// # Errors
    /// See [`S3Settings::upload_dir`].
    pub async fn upload_dir(&self, bucket: &str, prefix: &str, dir: &Path) -> Result<Vec<String>> {
        self.settings.upload_dir(bucket, prefix, dir).await
    }
}

impl Drop for S3Server {
    /// Stops accepting, ends open connections, waits for the server thread, then removes the
    /// folder. Blocks for as long as file operations under way take (at most a few seconds).
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // An error means the accept loop has already ended.
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!(endpoint = %self.settings.endpoint, "the S3 test server thread panicked");
        }
    }
}

/// Accepts connections until `stop` fires (or its sender is dropped).
async fn serve(listener: TcpListener, service: S3Front, mut stop: oneshot::Receiver<()>) {
    let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    loop {
        let stream = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Typically out of file descriptors: wait a moment rather than spin.
                    tracing::warn!(error = %e, "S3 test server: accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let http = http.clone();
        let service = service.clone();
        tokio::spawn(async move {
            if let Err(e) = http.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(error = %e, "S3 test server: a connection ended with an error");
            }
        });
    }
}

/// The `s3s` service with the fixes described in the module docs: a conditional create
/// (`If-None-Match` on a request that changes objects) runs while no other such request does,
/// which makes `s3s-fs`'s check-then-write atomic (the turn is held until the response is
/// ready, so the whole write, body included, happens inside it); other `PUT`, `POST` and
/// `DELETE` requests share their turn with each other, as S3 serves them in parallel; and a
/// `GET` or `HEAD` of a key that is a folder is answered 404 `NoSuchKey`, as S3 answers for a
/// key that is no object.
#[derive(Clone)]
struct S3Front {
    s3: S3Service,
    /// The folder `s3s-fs` serves (buckets are its subfolders).
    root: Arc<PathBuf>,
    writes: Arc<tokio::sync::RwLock<()>>,
}

impl S3Front {
    /// Whether a path-style request path (`/bucket/key`, percent-encoded) names a key that
    /// `s3s-fs` holds as a folder.
    fn names_a_folder(&self, uri_path: &str) -> bool {
        let Some(decoded) = percent_decode(uri_path) else { return false };
        let Some((bucket, key)) = decoded.trim_start_matches('/').split_once('/') else { return false };
        let plain = |s: &str| !s.is_empty() && s != "." && s != "..";
        plain(bucket)
            && !key.ends_with('/')
            && key.split('/').all(plain)
            && self.root.join(bucket).join(key).is_dir()
    }
}

/// `%XX` escapes decoded; `None` for a malformed escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            rest = tail.get(2..)?;
        } else {
            out.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(out).ok()
}

/// S3's answer for a key that is no object: 404 with a `NoSuchKey` error document (no body
/// for `HEAD`).
fn no_such_key(method: &Method) -> HttpResponse {
    let body = if *method == Method::HEAD {
        s3s::Body::empty()
    } else {
        s3s::Body::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>\
             <Message>The specified key does not exist.</Message></Error>"
                .to_string(),
        )
    };
    let mut response = HttpResponse::new(body);
    *response.status_mut() = StatusCode::NOT_FOUND;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    response
}

type ResponseFuture = Pin<Box<dyn Future<Output = std::result::Result<HttpResponse, HttpError>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for S3Front {
    type Response = HttpResponse;
    type Error = HttpError;
    type Future = ResponseFuture;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let method = request.method().clone();
        if matches!(method, Method::GET | Method::HEAD) && self.names_a_folder(request.uri().path()) {
            let response = no_such_key(&method);
            return Box::pin(async move { Ok(response) });
        }
        let reads_only = matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
        let conditional = request.headers().contains_key(hyper::header::IF_NONE_MATCH);
        let writes = (!reads_only).then(|| self.writes.clone());
        let s3 = self.s3.clone();
        Box::pin(async move {
            // Held until the response is ready: alone for a conditional create, shared
            // among other writes.
            let _turn: Option<Box<dyn Send>> = match writes {
                Some(writes) if conditional => Some(Box::new(writes.write_owned().await)),
                Some(writes) => Some(Box::new(writes.read_owned().await)),
                None => None,
            };
            hyper::service::Service::call(&s3, request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_escapes_decode() {
        assert_eq!(
            percent_decode("/bucket/parted/region%3Deu/a.parquet").unwrap(),
            "/bucket/parted/region=eu/a.parquet"
        );
        assert_eq!(percent_decode("/plain").unwrap(), "/plain");
        assert!(percent_decode("/bad%4").is_none());
        assert!(percent_decode("/bad%zz").is_none());
    }

    #[tokio::test]
    async fn objects_round_trip_and_a_folder_is_no_object() {
        let server = S3Server::start().unwrap();
        server.create_bucket("b-1").unwrap();
        assert!(matches!(server.create_bucket("b-1"), Err(Error::Bucket { .. })));
        assert!(matches!(server.create_bucket("Bad_Name"), Err(Error::Bucket { .. })));
        server.put_object("b-1", "dir/x=1/a.txt", b"hello".to_vec()).await.unwrap();
        let store = server.store("b-1").unwrap();
        let got = store.get(&ObjectPath::from("dir/x=1/a.txt")).await.unwrap().bytes().await.unwrap();
        assert_eq!(got.as_ref(), b"hello");
        // `dir` holds objects but is none itself: 404 at once, not a retried 500.
        assert!(matches!(
            store.head(&ObjectPath::from("dir")).await,
            Err(object_store::Error::NotFound { .. })
        ));
        assert!(matches!(
            store.get(&ObjectPath::from("dir/x=1")).await,
            Err(object_store::Error::NotFound { .. })
        ));
        // Wrong credentials are refused, as S3 refuses them.
        let stranger = S3Settings { secret_access_key: "wrong".into(), ..server.settings().clone() };
        assert!(stranger.put_object("b-1", "k", b"x".to_vec()).await.is_err());
    }

    #[tokio::test]
    async fn dropping_the_server_stops_it() {
        let server = S3Server::start().unwrap();
        let address = server.endpoint().trim_start_matches("http://").to_string();
        drop(server);
        assert!(
            tokio::net::TcpStream::connect(&address).await.is_err(),
            "nothing listens on {address} any more"
        );
    }
}
