//! Who a request comes from, once authenticated: its subject and its role.

use serde::{Deserialize, Serialize};

/// What a caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Reader,
    Operator,
}

impl Role {
    pub fn parse(value: &str) -> Option<Role> {
        match value {
            "reader" => Some(Role::Reader),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Operator => "operator",
        }
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Stable and safe to log: `key:<id>`, `jwt:<issuer>/<subject>`, or `anonymous`.
    pub subject: String,
    pub role: Role,
}

impl Identity {
    pub fn anonymous() -> Self {
        Identity { subject: "anonymous".into(), role: Role::Operator }
    }
}
