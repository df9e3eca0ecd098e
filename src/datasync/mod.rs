//! Everything that talks to DataSync or knows its wire shapes.

pub mod arn;
