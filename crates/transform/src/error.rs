//! Errors of the transform engine and their HTTP mapping.

use thiserror::Error;

/// Why [`Engine::start`](super::Engine::start) failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EngineError {
    /// libvips could not be initialised.
    #[error("libvips initialisation failed: {0}")]
    Init(String),
    /// The settings are unusable (zero workers, a non-output format, …).
    #[error("invalid transform settings: {0}")]
    Settings(String),
    /// An enabled output format failed the start-up self-test.
    #[error("output format {format} is unavailable: {reason}")]
    FormatUnavailable {
        /// The format's imgproxy name (`avif`, …).
        format: &'static str,
        /// What failed (e.g. the libvips HEIF module is missing).
        reason: String,
    },
    /// A worker thread could not be spawned.
    #[error("cannot start worker thread: {0}")]
    Spawn(String),
}

/// Why one transform (or probe) failed.
///
/// [`TransformError::status`] gives the HTTP status to answer with and
/// [`TransformError::message`] a short text safe to show clients; the
/// `Display` form carries the details for logs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TransformError {
    /// The bytes are not a recognised image (415).
    #[error("source is not an image")]
    NotAnImage,
    /// A recognised image format that is not accepted as a source (SVG,
    /// JPEG XL, BMP, ICO) (415).
    #[error("source format {0} is not allowed")]
    FormatNotAllowed(&'static str),
    /// The decoder rejected the data: truncated, corrupt (422).
    #[error("source image cannot be decoded: {0}")]
    Undecodable(String),
    /// Resolution or frame limits exceeded, found from the header before
    /// decoding (422).
    #[error("source image is too large: {0}")]
    TooLarge(String),
    /// The requested output format is not enabled on this engine (422).
    #[error("output format {0} is not enabled")]
    OutputNotEnabled(&'static str),
    /// The queue is full (429; answer with `Retry-After`).
    #[error("transform queue is full")]
    Overloaded,
    /// The job did not finish within the engine's timeout, counting its time
    /// in the queue (503, as imgproxy: the server is too busy, not an
    /// upstream failure; libvips cannot be interrupted mid-operation, so the
    /// worker may still finish the job and discard it).
    #[error("transform timed out")]
    Timeout,
    /// A bug or an environment failure (500).
    #[error("internal transform error: {0}")]
    Internal(String),
}

impl TransformError {
    /// HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            TransformError::NotAnImage | TransformError::FormatNotAllowed(_) => 415,
            TransformError::Undecodable(_)
            | TransformError::TooLarge(_)
            | TransformError::OutputNotEnabled(_) => 422,
            TransformError::Overloaded => 429,
            TransformError::Timeout => 503,
            TransformError::Internal(_) => 500,
        }
    }

    /// Short client-facing text: no libvips messages, paths or sizes that
    /// would help probing.
    pub fn message(&self) -> String {
        match self {
            TransformError::NotAnImage => "Source is not an image".into(),
            TransformError::FormatNotAllowed(f) => format!("Source format {f} is not allowed"),
            TransformError::Undecodable(_) => "Broken or unsupported image".into(),
            TransformError::TooLarge(_) => "Invalid source image".into(),
            TransformError::OutputNotEnabled(f) => format!("Output format {f} is not enabled"),
            TransformError::Overloaded => "Too many requests".into(),
            TransformError::Timeout => "Timeout".into(),
            TransformError::Internal(_) => "Internal error".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_safe_messages() {
        let cases = [
            (TransformError::NotAnImage, 415),
            (TransformError::FormatNotAllowed("svg"), 415),
            (
                TransformError::Undecodable("VipsJpeg: Premature end".into()),
                422,
            ),
            (TransformError::TooLarge("20000x20000".into()), 422),
            (TransformError::OutputNotEnabled("avif"), 422),
            (TransformError::Overloaded, 429),
            (TransformError::Timeout, 503),
            (TransformError::Internal("boom".into()), 500),
        ];
        for (e, status) in cases {
            assert_eq!(e.status(), status, "{e}");
            assert!(!e.message().contains("Vips") && !e.message().contains("boom"));
        }
    }
}
