//! The portable column formats: ids as UUID strings, counts as `BIGINT`, timestamps as fixed-width
//! UTC RFC 3339 text with microseconds (which sorts like the instants it names on both engines), and
//! flags as `BIGINT` 0/1 — the `Any` driver reads SQLite values by storage class, so a `BOOLEAN`
//! would come back as an integer from SQLite and as a bool from PostgreSQL.

use capibara_core::chat::{FinishReason, Role};
use capibara_core::{Error, Result};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// `2026-11-24T08:30:00.123456Z`: always 27 characters for years 0000–9999.
const TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// A timestamp as stored (sub-microsecond precision is dropped).
pub(super) fn timestamp(at: DateTime<Utc>) -> String {
    at.format(TIMESTAMP_FORMAT).to_string()
}

/// A stored timestamp read back.
pub(super) fn parse_timestamp(text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|e| Error::internal(format!("stored timestamp `{text}` is malformed: {e}")))
}

/// A stored id read back.
pub(super) fn parse_id(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|e| Error::internal(format!("stored id `{text}` is malformed: {e}")))
}

/// A stored role read back.
pub(super) fn parse_role(text: &str) -> Result<Role> {
    text.parse().map_err(|_| Error::internal(format!("stored role `{text}` is unknown")))
}

/// A finish reason as stored: its OpenAI wire name.
pub(super) fn finish_reason(reason: &FinishReason) -> String {
    reason.as_str().to_owned()
}

/// An unsigned count or size as a `BIGINT`.
pub(super) fn to_bigint(value: u64, what: &str) -> Result<i64> {
    i64::try_from(value).map_err(|_| Error::invalid(format!("{what} {value} is too large to store")))
}

/// A stored `BIGINT` that must not be negative, read back.
pub(super) fn from_bigint(value: i64, what: &str) -> Result<u64> {
    u64::try_from(value).map_err(|_| Error::internal(format!("stored {what} {value} is negative")))
}

/// A stored token count read back.
pub(super) fn token_count(value: i64, what: &str) -> Result<u32> {
    u32::try_from(value).map_err(|_| Error::internal(format!("stored {what} {value} is out of range")))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn timestamps_are_fixed_width_and_sort_as_text() {
        let early = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let late = early + chrono::Duration::nanoseconds(1_500);
        let (a, b) = (timestamp(early), timestamp(late));
        assert_eq!(a, "2026-01-02T03:04:05.000000Z");
        assert_eq!(b, "2026-01-02T03:04:05.000001Z");
        assert_eq!(a.len(), b.len());
        assert!(a < b);
        assert_eq!(parse_timestamp(&b).unwrap(), early + chrono::Duration::microseconds(1));
    }

    #[test]
    fn malformed_values_are_errors_not_defaults() {
        assert_eq!(parse_timestamp("ayer").unwrap_err().code(), "internal");
        assert_eq!(parse_id("no-id").unwrap_err().code(), "internal");
        assert_eq!(parse_role("robot").unwrap_err().code(), "internal");
        assert_eq!(from_bigint(-1, "seq").unwrap_err().code(), "internal");
        assert_eq!(to_bigint(u64::MAX, "size").unwrap_err().code(), "invalid_input");
        assert_eq!(token_count(i64::from(u32::MAX) + 1, "prompt tokens").unwrap_err().code(), "internal");
    }
}
