//! Runners for the official MongoDB spec tests, against the sdam core.
pub mod connection_string;
pub mod seedlist;
pub mod uri_options;
