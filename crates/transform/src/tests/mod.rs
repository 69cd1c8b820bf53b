//! Engine tests on images generated with libvips in the tests themselves
//! (no files from outside the repository).

mod direct_encode;
mod engine;
mod errors;
mod fixtures;
mod geometry;
mod jpeg_direct;
mod output;
mod resample;
