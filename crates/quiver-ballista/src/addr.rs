//! The scheduler's address as users write it (`df://host:port`, `http://host:port` or
//! `host:port`), checked once so every later use is well formed.

use std::fmt;

use url::Url;

use crate::error::{Error, Result};

/// The port Ballista schedulers listen on unless told otherwise.
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

/// Longest address accepted (a host name is at most 253 characters).
const MAX_LEN: usize = 300;

/// A scheduler's host and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerAddr {
    /// A host name or an IP address (IPv6 in brackets).
    pub host: String,
    pub port: u16,
}

impl SchedulerAddr {
    /// Parses `df://host[:port]`, `http://host[:port]` or `host[:port]`; the port defaults to
    /// 50050. Anything else (a path, a query, credentials, TLS, port 0) is refused with a
    /// message naming the input.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| Error::InvalidInput(format!("Ballista scheduler address '{text}': {why}"));
        let text = text.trim();
        if text.is_empty() {
            return Err(bad("empty; expected df://HOST:PORT"));
        }
        if text.len() > MAX_LEN {
            return Err(Error::InvalidInput(format!(
                "Ballista scheduler address is {} characters long, more than {MAX_LEN}",
                text.len()
            )));
        }
        let with_scheme = if text.contains("://") { text.to_string() } else { format!("df://{text}") };
        let url = Url::parse(&with_scheme).map_err(|e| bad(&format!("{e}; expected df://HOST:PORT")))?;
        match url.scheme() {
            "df" | "http" => {}
            "https" | "grpcs" => return Err(bad("TLS to the scheduler is not supported yet; use df://")),
            other => return Err(bad(&format!("unknown scheme '{other}'; expected df://HOST:PORT"))),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("credentials do not belong in the address"));
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(bad("only a host and a port are expected"));
        }
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| bad("no host"))?;
        let port = url.port().unwrap_or(DEFAULT_SCHEDULER_PORT);
        if port == 0 {
            return Err(bad("port 0 is not a port a scheduler listens on"));
        }
        Ok(SchedulerAddr { host: host.to_string(), port })
    }

    /// The URL Ballista's gRPC clients connect to (plain HTTP/2).
    pub fn grpc_url(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    /// `host:port`, for socket connections.
    pub fn host_port(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl fmt::Display for SchedulerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "df://{}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn accepted_forms() {
        let a = SchedulerAddr::parse("df://sched.internal:50070").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("sched.internal", 50070));
        assert_eq!(a.grpc_url(), "http://sched.internal:50070");
        assert_eq!(a.to_string(), "df://sched.internal:50070");
        assert_eq!(SchedulerAddr::parse("http://10.0.0.5:1").unwrap().host_port(), "10.0.0.5:1");
        assert_eq!(SchedulerAddr::parse("localhost").unwrap().port, DEFAULT_SCHEDULER_PORT);
        assert_eq!(SchedulerAddr::parse(" 127.0.0.1:6000 ").unwrap().port, 6000);
        assert_eq!(SchedulerAddr::parse("df://[::1]:7000").unwrap().grpc_url(), "http://[::1]:7000");
    }

    #[test]
    fn refused_forms_name_the_input() {
        for bad in [
            "",
            "df://",
            "df://h:0",
            "df://h:70000",
            "df://u:p@h:1",
            "df://h:1/path",
            "df://h:1?x=1",
            "https://h:1",
            "s3://bucket",
            "h:port",
        ] {
            let e = SchedulerAddr::parse(bad).unwrap_err().to_string();
            assert!(e.contains("Ballista scheduler address"), "{bad}: {e}");
        }
        let long = format!("df://{}:1", "a".repeat(400));
        assert!(SchedulerAddr::parse(&long).is_err());
    }
}
