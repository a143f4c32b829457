//! What the HTTP sources (Gmail API, Graph) share: an authenticated client that retries
//! throttled and failed requests ([`http`]) and a client-side quota limiter ([`quota`]).

pub mod http;
pub mod quota;

pub use http::{
    ApiClient, ApiStats, DEFAULT_MAX_ANSWER_BYTES, Failed, RetryPolicy, Verdict, retry_after,
};
pub use quota::QuotaLimiter;
