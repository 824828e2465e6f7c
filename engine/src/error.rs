//! Errors of opening and running the engine as a whole. Operations on one
//! subsystem return that subsystem's error (e.g. [`crate::queue::QueueError`]).

use std::path::PathBuf;

use crate::queue::QueueError;
use crate::storage::StorageError;

/// Why the engine could not open, or a whole-engine task failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data directory could not be created.
    ///
    /// Handling: fix the path or its permissions.
    #[error("cannot create data directory `{}`", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The database could not be opened or migrated.
    ///
    /// Handling: the message names the file; check it is a Switchyard
    /// database and not used by a newer version.
    #[error("cannot open storage at `{}`", path.display())]
    Storage {
        /// The database file, or `:memory:`.
        path: PathBuf,
        /// What failed.
        #[source]
        source: StorageError,
    },
    /// Stored queue declarations could not be loaded.
    ///
    /// Handling: reported at start; the engine does not open.
    #[error("cannot load queues")]
    Queues(#[source] QueueError),
    /// Span export could not start (e.g. a malformed OTLP endpoint).
    ///
    /// Handling: fix the telemetry configuration; the engine does not open.
    #[error("cannot start telemetry")]
    Telemetry(#[source] crate::telemetry::TelemetryError),
    /// A maintenance pass failed.
    ///
    /// Handling: logged; the next pass tries again.
    #[error("maintenance failed")]
    Maintenance(#[source] StorageError),
}
