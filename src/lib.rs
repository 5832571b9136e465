//! rsession: a native PHP session save handler with real locking.
//!
//! Layers: `php` (the only place with PHP types and `unsafe` FFI) calls the
//! `engine` (request lifecycle), which drives a `store` (bytes, locks,
//! expiry).

pub mod config;
pub mod engine;
pub mod meta;
pub mod pid;
pub mod stats;
pub mod error;
pub mod store;

#[cfg(all(feature = "php", not(test)))]
mod php;
