//! imgforge

pub mod static_files;
