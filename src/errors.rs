//! The one way an error is printed: its message, then each cause after `: `, so a log line
//! or a command's output reads `failed to X: because Y: because Z` however deep the chain.

use std::error::Error;

/// `err` and every cause under it, joined by `: `.
pub fn chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // A wrapper that repeats its cause's message (`#[error(transparent)]`-like) adds nothing.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("failed to save the checkpoint")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn each_cause_follows_its_error() {
        let err = Outer(std::io::Error::other("disk full"));
        assert_eq!(chain(&err), "failed to save the checkpoint: disk full");
    }
}
