//! What every upstream call shares: the one HTTP client builder (`http`), request budgets
//! (`rate_limit`) and the authenticated JSON API client with its error type ([`api`]).

pub mod api;
pub(crate) mod http;
pub(crate) mod rate_limit;

pub use api::{ApiClient, ApiError, ApiErrorKind};
