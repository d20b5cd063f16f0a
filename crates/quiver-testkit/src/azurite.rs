//! A real Azure Blob Storage endpoint for tests: Microsoft's emulator Azurite (npm's
//! `azurite`), started by the test on a free loopback port with in-memory storage and
//! stopped when dropped. Quiver's `object_store` Azure client reaches it through
//! `AZURE_STORAGE_USE_EMULATOR` and `AZURITE_BLOB_STORAGE_URL`, signing each request with the
//! emulator's published development account key, as it signs requests to Azure.
//!
//! The `azurite-blob` program is taken from `QUIVER_AZURITE` (a path) or else `PATH`; `.ci/run`
//! installs it. Containers are made here with one signed REST call (`object_store` has no call
//! for it).

#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// The emulator's development account and its key, as Microsoft publishes them for Azurite.
const ACCOUNT: &str = "devstoreaccount1";
const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// The REST API version the container call speaks.
const API_VERSION: &str = "2021-08-06";

/// One `azurite-blob` process.
pub struct Azurite {
    pub port: u16,
    child: Child,
}

impl Azurite {
    /// Starts Azurite's blob service on a free port; panics, saying how to install it, when
    /// the program is missing.
    pub fn start() -> Azurite {
        let program = std::env::var("QUIVER_AZURITE").unwrap_or_else(|_| "azurite-blob".to_string());
        let port = crate::redis::free_port();
        let child = Command::new(&program)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .args(["--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry", "--silent"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {program} ({e}): the Azure tests need Azurite (`npm install -g azurite`, \
                     or set QUIVER_AZURITE to its azurite-blob program; .ci/run installs it)"
                )
            });
        let mut azurite = Azurite { port, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = azurite.child.try_wait().unwrap() {
                panic!("azurite-blob exited at startup: {status}");
            }
            assert!(Instant::now() < deadline, "azurite-blob did not listen on port {port} within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        azurite
    }

    /// The variables that point Quiver's Azure client (`az://container/prefix`) here.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AZURE_STORAGE_USE_EMULATOR".into(), "true".into()),
            ("AZURITE_BLOB_STORAGE_URL".into(), format!("http://127.0.0.1:{}", self.port)),
        ]
    }

    /// An `object_store` client of `container`, configured explicitly (not from the
    /// environment), for the test's own checks.
    pub fn store(&self, container: &str) -> std::sync::Arc<dyn object_store::ObjectStore> {
        // The builder reads the emulator's address only from the environment; the account
        // key and endpoint given here are the same ones.
        let store = object_store::azure::MicrosoftAzureBuilder::new()
            .with_account(ACCOUNT)
            .with_access_key(ACCOUNT_KEY)
            .with_container_name(container)
            .with_endpoint(format!("http://127.0.0.1:{}/{ACCOUNT}", self.port))
            .with_allow_http(true)
            .build()
            .unwrap();
        std::sync::Arc::new(store)
    }

    /// Creates an empty container (a signed `PUT ?restype=container`).
    pub fn create_container(&self, name: &str) {
        let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let path = format!("/{ACCOUNT}/{name}");
        // Shared Key: the verb, eleven empty standard headers, the x-ms- headers, and the
        // resource (the emulator's path-style URLs carry the account a second time).
        let to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{API_VERSION}\n/{ACCOUNT}{path}\nrestype:container"
        );
        let key = STANDARD.decode(ACCOUNT_KEY).unwrap();
        let signature = STANDARD.encode(hmac_sha256(&key, to_sign.as_bytes()));
        let request = format!(
            "PUT {path}?restype=container HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nx-ms-date: {date}\r\n\
             x-ms-version: {API_VERSION}\r\nAuthorization: SharedKey {ACCOUNT}:{signature}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        );
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 201"), "creating container {name}: {answer}");
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// HMAC-SHA256 (RFC 2104) over SHA-256's 64-byte blocks.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}
