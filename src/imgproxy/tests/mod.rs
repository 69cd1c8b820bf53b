//! Cross-module tests of the URL API.
