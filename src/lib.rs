//! imgforge
