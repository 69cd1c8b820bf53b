//! imgforge
pub mod imgproxy;
