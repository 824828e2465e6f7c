//! Switchyard: an embeddable integration engine.
//!
//! Open an [`Engine`] from a [`Config`], then use its subsystems. Today that
//! is durable queues ([`queue`]); events, topics, request-response and sagas
//! join them on the same storage seam.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use switchyard::{Config, Engine, OutgoingMessage, QueueSpec, ReceiveOptions};
//!
//! let engine = Engine::open(Config::default()).await?;
//! engine.queues().declare(QueueSpec::new("orders").dead_letter_queue("orders.dlq")).await?;
//! engine.queues().send("orders", OutgoingMessage::json(&serde_json::json!({"sku": "A-1"}))).await?;
//! for delivery in engine.queues().receive("orders", ReceiveOptions { n_max: 10, ..Default::default() }).await? {
//!     engine.queues().ack(&delivery.lease).await?;
//! }
//! # Ok(()) }
//! ```
//!
//! # Layout
//! Read in this order:
//! - [`engine`]: the handle that opens storage and wires subsystems.
//! - [`config`]: every setting and bound, with defaults.
//! - [`queue`]: durable queues, consumers, dead letters.
//! - [`envelope`]: the message envelope shared by every capability.
//! - [`feed`]: the live stream of message state changes.
//! - [`telemetry`]: spans for every message operation, flow queries,
//!   metrics and logs.
//! - [`http`]: the HTTP server (`switchyard serve`): API, streams, console.
//! - [`client`]: a typed client of that API (the CLI and tests use it).
//! - [`storage`]: the storage seam and its SQLite backend.
//! - [`clock`]: injected time.
//! - [`demo`]: the order-processing demo workload.
//! - `cli`: the `switchyard` binary's commands (not part of the library API).

#![warn(missing_docs)]

#[doc(hidden)]
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod demo;
pub mod engine;
pub mod envelope;
pub mod error;
pub mod feed;
mod hex;
pub mod http;
pub mod queue;
pub mod storage;
pub mod telemetry;

pub use clock::{Clock, ManualClock, Timestamp};
pub use config::{
    AuthConfig, Config, Durability, HttpConfig, QueueConfig, Role, StorageConfig, TelemetryConfig,
    TokenConfig,
};
pub use engine::{Engine, OpenOptions};
pub use envelope::{Envelope, MessageId, OutgoingMessage, Payload};
pub use error::Error;
pub use feed::{FeedEvent, FeedKind};
pub use queue::{
    Backoff, ConsumeOptions, Consumer, DeadLetterFilter, DeadReason, Delivery, LeaseToken, Message,
    Outcome, Overflow, QueueError, QueueInfo, QueueSpec, QueueStats, Queues, ReceiveOptions,
    SendReceipt,
};
