//! What every upstream call shares: the one HTTP client builder (`http`), request budgets
//! (`rate_limit`), the authenticated JSON API client ([`api`]) and its error type (`error`).

pub mod api;
mod error;
pub mod http;
pub(crate) mod rate_limit;

pub use api::{ApiClient, ApiError, ApiErrorKind, Fetched};
