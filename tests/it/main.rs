//! The one integration-test binary (guardrails branch: only its own module is declared
//! here; the lead merges it into the full list).

mod helpers;

mod guardrails;
