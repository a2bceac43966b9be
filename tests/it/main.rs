//! flo2's integration suite, one test binary (one link instead of two dozen: it matters on
//! two cores). Each module drives the real server over HTTP on a random port against the fake
//! upstream; `common` holds the harness.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod account_security;
mod accounts;
mod audit_log;
mod binary;
mod common;
mod connections;
mod durability;
mod experiments;
mod gateway;
mod input_errors;
mod isolation;
mod keys;
mod login_throttle;
mod money;
mod openapi;
mod outage;
mod overload;
mod reports;
mod request_hardening;
mod roles;
mod routing;
mod ssrf;
mod stored_values;
mod usage_store;
mod vault;
mod web;
