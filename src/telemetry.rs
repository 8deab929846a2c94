//! Logs and metrics. Every metric name lives in [`metrics`]; [`trace`] sets up logging.

pub mod metrics;
pub mod recent;
pub mod trace;
