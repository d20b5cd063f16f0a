//! The bodies of Quiver's fuzz targets, one function per target, each taking the fuzzer's
//! bytes. The cargo-fuzz project in `fuzz/` calls them from its targets (coverage-guided,
//! nightly toolchain), and this crate's `corpora` test replays every saved input of
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through the same functions on
//! the stable toolchain, so each crash a fuzzer once found stays a test.
//!
//! What each target holds Quiver to, beyond "never panics, never hangs":
//! - [`definitions`]: any YAML text is read into definitions or clear problems, each naming
//!   a file; definitions read without problems diff cleanly against nothing;
//! - [`online_row`]: any bytes in the online store decode to a row or a `Corrupt` error, and
//!   a decoded row encodes and decodes to the same bytes again;
//! - [`push_ipc`]: any push body is refused as invalid input or written, never an internal
//!   error;
//! - [`spine`]: any spine file (CSV or Parquet) makes a training set or an error that is not
//!   internal and names no internal column;
//! - [`requests`]: any protobuf bytes sent to a method either fail to decode (the transport
//!   answers `INVALID_ARGUMENT`) or get an answer whose status is never `INTERNAL` or
//!   `UNKNOWN`.
//!
//! The three last run against one in-process project (the repository's example definitions
//! over a small generated lake, materialized once, with the embedded online store), built on
//! first use and shared by every input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixture;

use quiver_online::value::{Value, decode, encode, order_parts, stored_fingerprint};

pub use fixture::Fixture;

/// A target's body: the fuzzer's bytes in, a panic when a property fails.
pub type Body = fn(&[u8]);

/// Every target, by the name of its folder under `fuzz/corpus/`.
pub const TARGETS: &[(&str, Body)] = &[
    ("definitions", definitions),
    ("online_row", online_row),
    ("push_ipc", push_ipc),
    ("spine", spine),
    ("requests", requests),
];

/// The definitions loader: YAML documents (split on form feeds, at most 8) read, then
/// checked against each other.
pub fn definitions(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let documents: Vec<(String, String)> =
        text.split('\u{c}').take(8).enumerate().map(|(i, t)| (format!("f{i}.yaml"), t.to_string())).collect();
    let loaded = quiver_core::repo::parse_documents(&documents);
    let problems = quiver_core::validate::validate_references(&loaded);
    for problem in loaded.problems.0.iter().chain(problems.0.iter()) {
        let shown = problem.to_string();
        assert!(!shown.is_empty());
    }
    if loaded.problems.is_empty() && problems.is_empty() {
        let changes =
            quiver_core::diff::diff(&quiver_core::definitions::Definitions::default(), &loaded.definitions);
        let objects = loaded.definitions.objects();
        assert_eq!(changes.len(), objects.len(), "every object is one added change");
    }
}

/// The online row decoder: bytes as the online store would hand them back.
pub fn online_row(data: &[u8]) {
    let parts = order_parts(data);
    let fingerprint = stored_fingerprint(data);
    // The newer-wins rule compares undecoded bytes: it must cope with any.
    let _ = quiver_online::store::newer_wins(Some(data), data);
    let Ok(row) = decode(data, "fuzz") else { return };
    assert!(parts.is_some(), "a row that decodes has its order bytes");
    let sortable: Vec<bool> = row.values.iter().map(|v| !matches!(v, Value::List(_))).collect();
    let encoded = encode(&row, fingerprint.unwrap_or(0), &sortable);
    let again = decode(&encoded, "fuzz").expect("a row Quiver encoded decodes");
    // Bytes, not values: NaN is not equal to itself.
    assert_eq!(encode(&again, fingerprint.unwrap_or(0), &sortable), encoded);
}

/// The push body decoder and the push itself (online only: the offline append is the same
/// validation followed by a Delta commit).
pub fn push_ipc(data: &[u8]) {
    let fixture = Fixture::get();
    fixture.block_on(async {
        let Some((view, body)) = split_name(data) else { return };
        let outcome = match quiver_server::convert::decode_ipc(body, "arrow_ipc") {
            Ok((_, batches)) => fixture
                .app
                .project()
                .push(view, batches, quiver_server::domain::push::PushTo::Online)
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            fixture::assert_not_internal(&quiver_server::error::to_status(e));
        }
    });
}

/// The spine reader and the training set built from it: the first byte picks the file
/// type (even: CSV, odd: Parquet), the rest is the file.
pub fn spine(data: &[u8]) {
    let Some((&kind, body)) = data.split_first() else { return };
    let fixture = Fixture::get();
    fixture.block_on(async {
        if let Err(e) = fixture.training_set(kind % 2 == 1, body).await {
            let message = e.to_string();
            assert!(!matches!(e, quiver_offline::Error::Internal(_)), "an internal error: {message}");
            assert!(!message.contains("__quiver"), "the error names an internal column: {message}");
        }
    });
}

/// The request decoders and the methods behind them: the first byte picks the method, the
/// rest is its protobuf request.
pub fn requests(data: &[u8]) {
    let Some((&method, body)) = data.split_first() else { return };
    let fixture = Fixture::get();
    fixture.block_on(async {
        if let Some(status) = fixture.call(method, body).await {
            fixture::assert_not_internal(&status);
        }
    });
}

/// `data` as `name NUL body` (the name at most 64 bytes of UTF-8).
fn split_name(data: &[u8]) -> Option<(&str, &[u8])> {
    let at = data.iter().take(65).position(|b| *b == 0)?;
    Some((std::str::from_utf8(&data[..at]).ok()?, &data[at + 1..]))
}
