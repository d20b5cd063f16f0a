//! The scheduler's health endpoint (`/readyz`, on its gRPC port), read to learn how many
//! executors are registered.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::addr::SchedulerAddr;
use crate::error::{Error, Result};

/// Most bytes of an answer read.
const MAX_ANSWER: u64 = 4096;

/// The number of live executors the scheduler reports, or an error when it cannot be asked
/// within `timeout`.
pub async fn live_executors(addr: &SchedulerAddr, timeout: Duration) -> Result<usize> {
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(addr.host_port()).await?;
        let request =
            format!("GET /readyz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", addr.host_port());
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.take(MAX_ANSWER).read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&answer).into_owned())
    };
    let answer = tokio::time::timeout(timeout, ask)
        .await
        .map_err(|_| Error::Unreachable {
            url: addr.to_string(),
            reason: format!("no answer within {timeout:?}"),
        })?
        .map_err(|e| Error::Unreachable { url: addr.to_string(), reason: e.to_string() })?;
    parse_readyz(&answer).ok_or_else(|| {
        Error::Cluster(format!(
            "{addr} answered /readyz with something other than a Ballista scheduler's answer: {}",
            answer.lines().next().unwrap_or_default()
        ))
    })
}

/// The executor count in an answer of `/readyz`: `ready: N executors registered` (200) or
/// `not ready: N/M executors registered` (503).
fn parse_readyz(answer: &str) -> Option<usize> {
    let (_, body) = answer.split_once("\r\n\r\n")?;
    let body = body.trim_start();
    let rest = body.strip_prefix("ready: ").or_else(|| body.strip_prefix("not ready: "))?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Waits until at least `count` executors are registered with the scheduler, for at most
/// `timeout`; `check` is called between attempts and may end the wait with an error (an
/// executor that exited, say).
pub async fn wait_for_executors(
    addr: &SchedulerAddr,
    count: usize,
    timeout: Duration,
    mut check: impl FnMut() -> Result<()>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        check()?;
        let last = match live_executors(addr, Duration::from_secs(2)).await {
            Ok(n) if n >= count => return Ok(()),
            Ok(n) => format!("{n} of {count} executors registered"),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(Error::Cluster(format!(
                "scheduler {addr}: not {count} executors within {timeout:?} ({last})"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readyz_answers() {
        let ok = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nready: 2 executors registered\n";
        assert_eq!(parse_readyz(ok), Some(2));
        let no = "HTTP/1.1 503 Service Unavailable\r\n\r\nnot ready: 0/1 executors registered\n";
        assert_eq!(parse_readyz(no), Some(0));
        assert_eq!(parse_readyz("HTTP/1.1 404 Not Found\r\n\r\nnope"), None);
    }
}
