//! Replays every saved fuzz input through its target: the seed corpora (`fuzz/corpus/`) and
//! the inputs that once failed (`fuzz/regressions/`). A failing input is named by its file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

fn inputs(target: &str, folder: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz").join(folder).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> =
        entries.map(|e| e.unwrap().path()).filter(|p| p.is_file() && !p.ends_with(".gitkeep")).collect();
    files.sort();
    files
}

/// Panics seen in any thread of this process. libFuzzer stops at a panic in any thread (a
/// runtime's worker too, whose panic the runtime would otherwise turn into an error), and so
/// does the replay.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

fn replay(target: &str) {
    // One target at a time: a panic is counted process-wide, so it is told against the
    // input that caused it.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    count_panics();
    let body = quiver_fuzz::TARGETS.iter().find(|(name, _)| *name == target).expect("a target").1;
    let corpus = inputs(target, "corpus");
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target}/ holds no inputs: run `cargo run -p quiver-fuzz --example seeds`"
    );
    for path in corpus.iter().chain(inputs(target, "regressions").iter()) {
        let data = std::fs::read(path).unwrap();
        let before = PANICS.load(Ordering::SeqCst);
        if std::panic::catch_unwind(|| body(&data)).is_err() || PANICS.load(Ordering::SeqCst) != before {
            panic!("the fuzz input {} fails (see the panic above)", path.display());
        }
    }
}

#[test]
fn definitions_corpus_replays() {
    replay("definitions");
}

#[test]
fn online_row_corpus_replays() {
    replay("online_row");
}

#[test]
fn push_ipc_corpus_replays() {
    replay("push_ipc");
}

#[test]
fn spine_corpus_replays() {
    replay("spine");
}

#[test]
fn requests_corpus_replays() {
    replay("requests");
}
