//! Test support for the read contracts (feature `test-util`).
//!
//! - [`MemSource`] and [`source_conformance`] ([`mod@source`]): the reference semantics of
//!   [`crate::read::Source`] and the suite every `Source` must pass.
//! - [`MemLogSource`] and [`log_source_conformance`] ([`log_source`]): the same for
//!   [`crate::read::LogSource`].
//! - [`MemHistograms`] and [`histogram_source_conformance`] ([`histogram_source`]): the same for
//!   [`crate::read::Source::select_histograms`], the native-histogram read.
//! - [`workload`]: synthetic node-exporter-like series for size measurements and benchmarks.

pub mod histogram_source;
pub mod log_source;
pub mod source;
pub mod workload;

pub use histogram_source::{MemHistograms, histogram_source_conformance};
pub use log_source::{MemLogSource, log_source_conformance};
pub use source::{MemSource, source_conformance};
