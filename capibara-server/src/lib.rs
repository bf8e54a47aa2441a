//! capibara-server
pub mod store;
