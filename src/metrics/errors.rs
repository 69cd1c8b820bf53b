//! imgproxy's error types (`errors_total{type}`) and which of our failures falls in which (pure).
//!
//! The names are imgproxy v4's monitoring categories, so that dashboards and alerts built on
//! imgproxy's `errors_total` read ours the same way.

use crate::imgproxy::UrlError;
use crate::source::FetchError;
use crate::transform::TransformError;

/// One value of the `type` label of `errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorType {
    /// The request ran out of time: the transform (queue wait included) exceeded
    /// `[transform] timeout`, or the edge gave up waiting for the image service.
    Timeout,
    /// The source is larger than the file-size limit.
    ImageDataSize,
    /// The URL does not parse: unknown option, bad argument, expired, unknown preset, an output
    /// format that cannot be produced.
    PathParsing,
    /// Signature, bearer token, security options, or a source refused by `allowed_sources` or
    /// the address guard.
    Security,
    /// The transform queue was full (429).
    Queue,
    /// The source could not be fetched (missing, origin error, unreachable, slow).
    Download,
    /// libvips could not make the image: not an image, format not allowed, corrupt, over the
    /// resolution or frame limits, internal errors.
    Processing,
    /// The exchange between the edge and the image service broke.
    Io,
}

impl ErrorType {
    /// Every type, for documentation and tests.
    pub const ALL: [ErrorType; 8] = [
        ErrorType::Timeout,
        ErrorType::ImageDataSize,
        ErrorType::PathParsing,
        ErrorType::Security,
        ErrorType::Queue,
        ErrorType::Download,
        ErrorType::Processing,
        ErrorType::Io,
    ];

    /// The label value, spelt as imgproxy spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::Timeout => "timeout",
            ErrorType::ImageDataSize => "image_data_size",
            ErrorType::PathParsing => "path_parsing",
            ErrorType::Security => "security",
            ErrorType::Queue => "queue",
            ErrorType::Download => "download",
            ErrorType::Processing => "processing",
            ErrorType::Io => "IO",
        }
    }

    /// A URL the edge or the image service refused.
    pub fn of_url(e: &UrlError) -> Self {
        match e {
            UrlError::NoSignatureKey
            | UrlError::InvalidSignatureEncoding
            | UrlError::InvalidSignature
            | UrlError::MalformedSignature
            | UrlError::SecurityOptionsNotAllowed(_)
            | UrlError::SourceNotAllowed(_) => ErrorType::Security,
            _ => ErrorType::PathParsing,
        }
    }

    /// A source that could not be fetched.
    pub fn of_fetch(e: &FetchError) -> Self {
        match e {
            FetchError::TooLarge { .. } => ErrorType::ImageDataSize,
            FetchError::Blocked(_) => ErrorType::Security,
            _ => ErrorType::Download,
        }
    }

    /// A transform (or probe) that failed.
    pub fn of_transform(e: &TransformError) -> Self {
        match e {
            TransformError::Overloaded => ErrorType::Queue,
            TransformError::Timeout => ErrorType::Timeout,
            _ => ErrorType::Processing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_imgproxys() {
        let labels: Vec<&str> = ErrorType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(
            labels,
            [
                "timeout",
                "image_data_size",
                "path_parsing",
                "security",
                "queue",
                "download",
                "processing",
                "IO"
            ]
        );
    }

    #[test]
    fn failures_fall_in_imgproxys_types() {
        use ErrorType::*;
        let url = [
            (UrlError::InvalidSignature, Security),
            (UrlError::SecurityOptionsNotAllowed("msr"), Security),
            (UrlError::SourceNotAllowed("http://x/".into()), Security),
            (UrlError::UnknownOption("nope".into()), PathParsing),
            (UrlError::Expired, PathParsing),
            (
                UrlError::UnsupportedOutputFormat(crate::imgproxy::Format::Bmp),
                PathParsing,
            ),
        ];
        for (e, want) in url {
            assert_eq!(ErrorType::of_url(&e), want, "{e}");
        }
        let fetch = [
            (FetchError::NotFound, Download),
            (FetchError::OriginStatus(500), Download),
            (FetchError::Timeout, Download),
            (FetchError::Unreachable("refused".into()), Download),
            (FetchError::TooLarge { limit: 1 }, ImageDataSize),
        ];
        for (e, want) in fetch {
            assert_eq!(ErrorType::of_fetch(&e), want, "{e}");
        }
        let transform = [
            (TransformError::Overloaded, Queue),
            (TransformError::Timeout, Timeout),
            (TransformError::NotAnImage, Processing),
            (TransformError::Undecodable("x".into()), Processing),
            (TransformError::TooLarge("x".into()), Processing),
        ];
        for (e, want) in transform {
            assert_eq!(ErrorType::of_transform(&e), want, "{e}");
        }
    }
}
