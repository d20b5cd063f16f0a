//! Locations given as a local path or an object store URL, turned into an `ObjectStore` and
//! a prefix inside it.
//!
//! Relative paths resolve against a base folder (the config file's folder). URLs with a
//! scheme (`file://`, `s3://`, `gs://`, `az://`, `memory://`, `http(s)://`) go to the
//! matching `object_store` backend; S3 reads endpoint, region and credentials from the
//! usual `AWS_*` environment variables.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use url::Url;

use crate::error::{Error, Result};

/// Whether `spec` is a URL (has a scheme) rather than a local path.
pub fn is_url(spec: &str) -> bool {
    match spec.split_once("://") {
        Some((scheme, _)) => {
            !scheme.is_empty()
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
        }
        None => false,
    }
}

/// Resolves a path or URL to a URL. A relative path is taken from `base_dir`; `..` and `.`
/// are folded so the same folder always gives the same URL.
pub fn resolve_location(spec: &str, base_dir: &Path) -> Result<Url> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err(Error::InvalidArgument("an empty path or URL".into()));
    }
    if is_url(spec) {
        return Url::parse(spec)
            .map_err(|e| Error::InvalidArgument(format!("'{spec}' is not a valid URL: {e}")));
    }
    let path = Path::new(spec);
    let joined = if path.is_absolute() { path.to_path_buf() } else { base_dir.join(path) };
    let absolute = if joined.is_absolute() {
        joined
    } else {
        std::env::current_dir().map_err(|e| Error::io(".", e))?.join(joined)
    };
    let normal = normalize(&absolute);
    let mut url = Url::from_directory_path(&normal).map_err(|()| {
        Error::InvalidArgument(format!("'{}' cannot be turned into a file URL", normal.display()))
    })?;
    if !spec.ends_with('/') && !normal.is_dir() {
        // Keep a file path a file path (no trailing slash) when it is not a folder.
        url = Url::from_file_path(&normal).map_err(|()| {
            Error::InvalidArgument(format!("'{}' cannot be turned into a file URL", normal.display()))
        })?;
    }
    Ok(url)
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// An object store and the prefix under which a location's objects live.
#[derive(Clone, Debug)]
pub struct StoreLocation {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: ObjectPath,
    pub url: Url,
}

/// Opens the object store for a location URL. `file://` folders are created when missing,
/// so a fresh project needs no setup.
pub fn open_location(url: &Url) -> Result<StoreLocation> {
    let storage_err = |e: object_store::Error| Error::storage(url, e);
    match url.scheme() {
        "file" => {
            let path = url
                .to_file_path()
                .map_err(|()| Error::InvalidArgument(format!("'{url}' is not a local file URL")))?;
            std::fs::create_dir_all(&path).map_err(|e| Error::io(path.display(), e))?;
            let store = LocalFileSystem::new_with_prefix(&path).map_err(storage_err)?;
            Ok(StoreLocation { store: Arc::new(store), prefix: ObjectPath::default(), url: url.clone() })
        }
        "memory" => Ok(StoreLocation {
            store: Arc::new(InMemory::new()),
            prefix: ObjectPath::from(url.path().trim_matches('/')),
            url: url.clone(),
        }),
        "s3" | "s3a" => {
            let bucket =
                url.host_str().ok_or_else(|| Error::InvalidArgument(format!("'{url}' names no bucket")))?;
            let store = AmazonS3Builder::from_env().with_bucket_name(bucket).build().map_err(storage_err)?;
            Ok(StoreLocation {
                store: Arc::new(store),
                prefix: ObjectPath::from(url.path().trim_matches('/')),
                url: url.clone(),
            })
        }
        _ => {
            let options: Vec<(String, String)> = std::env::vars()
                .filter(|(k, _)| k.starts_with("AWS_") || k.starts_with("GOOGLE_") || k.starts_with("AZURE_"))
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect();
            let (store, prefix) = object_store::parse_url_opts(url, options).map_err(storage_err)?;
            Ok(StoreLocation { store: Arc::from(store), prefix, url: url.clone() })
        }
    }
}

/// What to check when nothing answers at a store's location: a refused connection, a name
/// that does not resolve, or no answer at all within a check's time limit.
pub const UNREACHABLE: &str = "the store cannot be reached: check AWS_ENDPOINT (or the cloud's own \
                               endpoint settings), the network and any proxy";

/// What to check when the object store at `location` (a URL, or a location inside one)
/// answered `e`, by what it answered: the bucket, the credentials, the endpoint, or else the
/// URL and the settings in general.
pub fn what_to_check(location: &str, e: &object_store::Error) -> String {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    if lower.contains("nosuchbucket")
        || lower.contains("bucket does not exist")
        || lower.contains("containernotfound")
    {
        let bucket =
            Url::parse(location).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
        format!("the bucket '{bucket}' does not exist: create it, or correct the URL")
    } else if matches!(
        e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) || lower.contains("signaturedoesnotmatch")
        || lower.contains("invalidaccesskeyid")
        || lower.contains("accessdenied")
        || lower.contains("authenticationfailed")
        // A status, as the HTTP client words it; never a bare number, which the elapsed
        // time of a retried request (`in 6.118484403s`) may contain.
        || ["status code: 403", "status code: 401", "403 forbidden", "401 unauthorized"]
            .iter()
            .any(|status| lower.contains(status))
    {
        "the credentials were refused: check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and \
         AWS_SESSION_TOKEN), or GOOGLE_* / AZURE_* for those stores, or the role this process \
         runs with, and that it may read and write this bucket"
            .to_string()
    } else if lower.contains("error sending request") || lower.contains("connect") || lower.contains("dns") {
        UNREACHABLE.to_string()
    } else {
        "check the URL and the AWS_* (GOOGLE_*, AZURE_*) settings".to_string()
    }
}

/// Whether objects at `url` can be created only if absent (a conditional put), which Delta
/// commits and the registry's compare-and-swap rest on; the error says which setting to
/// change. Local folders, memory, Google Cloud Storage and Azure always can; S3 can unless
/// `AWS_CONDITIONAL_PUT=disabled`; plain HTTP stores cannot.
pub fn check_create_only(url: &Url) -> Result<()> {
    match url.scheme() {
        "s3" | "s3a" => {
            let setting = AmazonS3Builder::from_env().get_config_value(&AmazonS3ConfigKey::ConditionalPut);
            if setting.as_deref().is_some_and(|v| v.eq_ignore_ascii_case("disabled")) {
                return Err(Error::InvalidArgument(format!(
                    "{url}: AWS_CONDITIONAL_PUT=disabled turns off create-only writes, so two \
                     writers could both commit the same version; unset it (S3 and most \
                     S3-compatible stores honour If-None-Match) or set it to etag"
                )));
            }
            Ok(())
        }
        "http" | "https" => Err(Error::InvalidArgument(format!(
            "{url}: a plain HTTP store cannot create objects only if absent, so commits could be \
             lost; use s3://, gs://, az:// or a local folder"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_to_check_reads_statuses_not_digits_in_a_time() {
        let generic = |text: &str| object_store::Error::Generic { store: "S3", source: text.into() };
        // Nothing listening: the elapsed time happens to hold "403" and "401".
        let unreachable = generic(
            "Error performing HEAD http://127.0.0.1:9/q/x.json in 6.118484403s, after 10 retries, \
             max_retries: 10, retry_timeout: 180s  - HTTP error: error sending request",
        );
        assert_eq!(what_to_check("s3://q/", &unreachable), UNREACHABLE);
        let slow = generic("Error performing HEAD http://h/q in 2.401s - HTTP error: error sending request");
        assert_eq!(what_to_check("s3://q/", &slow), UNREACHABLE);
        let refused = generic(
            "Error performing GET http://h/q in 20ms - Server returned non-2xx status code: 403 Forbidden: ",
        );
        assert!(what_to_check("s3://q/", &refused).starts_with("the credentials were refused"));
        let denied = object_store::Error::PermissionDenied { path: "q/x".into(), source: "denied".into() };
        assert!(what_to_check("s3://q/", &denied).starts_with("the credentials were refused"));
        let bucket = generic("NoSuchBucket: The specified bucket does not exist");
        assert_eq!(
            what_to_check("s3://q/", &bucket),
            "the bucket 'q' does not exist: create it, or correct the URL"
        );
    }

    #[test]
    fn each_cloud_scheme_opens_its_own_client_with_the_prefix() {
        // Azure needs an account to build a client: the az:// tests run against Azurite.
        for (url, client, prefix) in [
            ("gs://bucket/some/prefix", "GoogleCloudStorage", "some/prefix"),
            ("s3://bucket/some/prefix/", "AmazonS3", "some/prefix"),
            ("memory://offline", "InMemory", ""),
        ] {
            let opened = open_location(&Url::parse(url).unwrap()).unwrap();
            assert!(opened.store.to_string().contains(client), "{url}: {}", opened.store);
            assert_eq!(opened.prefix.as_ref(), prefix, "{url}");
        }
    }

    #[test]
    fn relative_paths_resolve_against_the_base() {
        let base = Path::new("/srv/project");
        assert_eq!(
            resolve_location(".quiver/registry/", base).unwrap().as_str(),
            "file:///srv/project/.quiver/registry/"
        );
        assert_eq!(
            resolve_location("../lake/x.parquet", base).unwrap().as_str(),
            "file:///srv/lake/x.parquet"
        );
        assert_eq!(resolve_location("/abs/dir/", base).unwrap().as_str(), "file:///abs/dir/");
        assert_eq!(resolve_location("s3://bucket/reg", base).unwrap().as_str(), "s3://bucket/reg");
        assert_eq!(resolve_location("memory://", base).unwrap().scheme(), "memory");
        assert!(resolve_location("", base).is_err());
    }
}
