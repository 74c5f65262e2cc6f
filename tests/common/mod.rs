//! Helpers shared by the integration tests: `mod common;` in a test file.
//! Each test binary uses only some of them.
#![allow(dead_code)]

pub mod postgres;
