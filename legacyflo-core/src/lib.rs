//! # legacyflo-core
//!
//! The model and engine of legacyflo, a toolkit that moves whole mailboxes out of the
//! services people are leaving into archives they own. No network or S3 code lives here.
//!
//! - [`Message`]: raw RFC 5322 bytes plus folder, flags, dates, labels and a stable id.
//! - [`Source`] and [`Sink`]: the two traits every backend implements, each with a written
//!   contract (ordering, idempotency, durability, behaviour after errors).
//! - [`request`]: the service's request types (`GMAIL-S3-ZIP`, `PST-VAULTASTIC4`, …) and
//!   their validated parameters.
//! - [`Engine`]: runs a request with filters, concurrency, checkpoints driven by sink
//!   acknowledgements, retries, progress events and a [`Report`].
//!
//! ```no_run
//! # async fn demo(source: std::sync::Arc<dyn legacyflo_core::Source>, sink: Box<dyn legacyflo_core::Sink>) {
//! use legacyflo_core::{Engine, LocalStateStore};
//! let result = legacyflo_core::Engine::new("MBOX-S3-ZIP", source, sink)
//!     .state(std::sync::Arc::new(LocalStateStore::new(".legacyflo/state", "demo")))
//!     .run()
//!     .await;
//! println!("{}", result.report);
//! # }
//! ```
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod codec;
pub mod contentlist;
pub mod engine;
pub mod error;
pub mod filter;
pub mod fsutil;
pub mod location;
pub mod message;
pub mod request;
pub mod sink;
pub mod source;
pub mod spill;
pub mod summary;

pub use engine::report::{Failure, FolderReport, Report, RunStatus, Totals};
pub use engine::state::{LocalStateStore, RunState, StateStore};
pub use engine::{Engine, EngineOptions, ProgressEvent, ProgressListener, RetryPolicy, RunResult};
pub use error::{BoxError, Error, ErrorKind, Result};
pub use filter::Filter;
pub use location::Location;
pub use message::{Flag, FolderPath, Message};
pub use request::{Field, Params, Request, RequestType};
pub use sink::{Output, OutputKind, Placement, Settled, Sink, SinkState, WriteOutcome};
pub use source::{
    FolderInfo, MessageStream, Position, Source, SourceCapabilities, SourceEvent, SourceItem,
};
pub use summary::Summary;
