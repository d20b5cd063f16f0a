//! Decoding a caller's bytes with code that may panic on malformed input (Arrow's and the
//! Parquet reader's): [`guarded`] runs it with the panic caught, and marks the thread while it
//! runs, so that a panic hook can tell such a panic, which becomes an error, from one that
//! is a bug ([`decoding`]).

use std::cell::Cell;

thread_local! {
    static DECODING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `decode` on this thread with any panic caught: `Err` holds the panic's payload.
pub fn guarded<T>(decode: impl FnOnce() -> T) -> std::thread::Result<T> {
    let outer = DECODING.with(|d| d.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode));
    DECODING.with(|d| d.set(outer));
    result
}

/// True while this thread runs a [`guarded`] decode: a panic there is caught and told to the
/// caller as bad input.
pub fn decoding() -> bool {
    DECODING.with(Cell::get)
}

/// The message of a caught panic's payload, for the log.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guarded_panic_is_an_error_and_the_thread_is_marked_only_inside() {
        assert!(!decoding());
        let marked = guarded(decoding).unwrap();
        assert!(marked);
        let caught = guarded(|| -> u8 { panic!("malformed: {}", 7) }).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "malformed: 7");
        assert!(!decoding(), "the mark is cleared after a panic too");
        assert!(guarded(|| guarded(decoding).unwrap() && decoding()).unwrap());
        assert!(!decoding());
    }
}
