//! Scalars the GraphQL schema needs beyond the built-in ones.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use serde::{Deserialize, Serialize};

/// A signed 64-bit integer: byte and file counters and millisecond durations.
///
/// GraphQL's `Int` is 32-bit, so a transfer of more than 2 GiB would not fit. `Long` is sent as
/// a JSON number; values above 2^53 lose precision in JavaScript clients, which for bytes is 8 PiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Long(pub i64);

/// A signed 64-bit integer (byte and file counters, durations in milliseconds), sent as a JSON number.
#[Scalar(name = "Long")]
impl ScalarType for Long {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::Number(n) => n
                .as_i64()
                .map(Long)
                .ok_or_else(|| InputValueError::custom("expected a whole number that fits in 64 bits")),
            Value::String(s) => s
                .parse()
                .map(Long)
                .map_err(|_| InputValueError::custom("expected a whole number that fits in 64 bits")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::Number(self.0.into())
    }
}

impl From<i64> for Long {
    fn from(value: i64) -> Self {
        Long(value)
    }
}
