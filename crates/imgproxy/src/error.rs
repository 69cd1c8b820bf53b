//! The single error type of the URL API and its imgproxy-compatible HTTP status.

use super::options::Format;

/// Longest piece of client input echoed back inside an error message.
///
/// Error texts end up in logs and (for some variants) in response bodies, so an
/// attacker-sized argument must not be able to blow them up.
const MAX_ECHO: usize = 64;

/// Why a request path could not be turned into an [`ImageRequest`](super::ImageRequest).
///
/// `Display` gives the detailed, log-friendly text (it names the option and the
/// argument); [`UrlError::public_message`] gives the short text imgproxy shows to
/// clients; [`UrlError::status`] gives the HTTP status imgproxy v4 answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The path has no signature segment or nothing after it.
    #[error("Invalid path: {0}")]
    InvalidPath(String),
    /// The first path part is a v1/v2 resizing type (`/fill/300/400/...`).
    #[error("It looks like you're using the deprecated basic URL format")]
    BasicUrlFormat,
    /// An option name that is not one of the 45 open-source options.
    #[error("Unknown processing option {0}")]
    UnknownOption(String),
    /// An option name missing from the route's `allowed_options`.
    #[error("Forbidden processing option {0}")]
    ForbiddenOption(String),
    /// Wrong number or shape of arguments for an option.
    #[error("Invalid {option} arguments: {args}")]
    InvalidArguments {
        /// Full option name.
        option: &'static str,
        /// The arguments as received, `:`-joined.
        args: String,
    },
    /// One argument has the wrong value.
    #[error("Invalid {option}: {arg} (expected {expected})")]
    InvalidArgument {
        /// Full option (or sub-argument) name, e.g. `gravity.x_offset`.
        option: &'static str,
        /// The argument as received.
        arg: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// An option-specific rule was broken (message as imgproxy words it).
    #[error("{message}")]
    OptionRule {
        /// Full option name.
        option: &'static str,
        /// Human-readable reason.
        message: String,
    },
    /// `expires` lies in the past.
    #[error("Expired URL")]
    Expired,
    /// `preset` names a preset the route does not define.
    #[error("Unknown preset: {0}")]
    UnknownPreset(String),
    /// Preset expansion exceeded the per-request budget.
    #[error("Too many preset expansions")]
    TooManyPresets,
    /// A security option (`msr`, `msfs`, `maf`, `mafr`, `mrd`) on a route that
    /// does not allow them.
    #[error("Security processing options are not allowed ({0})")]
    SecurityOptionsNotAllowed(&'static str),
    /// Nothing after the options.
    #[error("Image URL is empty")]
    EmptySourceUrl,
    /// More than one `@` (plain) or `.` (Base64) in the source part.
    #[error("Multiple formats are specified: {0}")]
    MultipleFormats(String),
    /// Bad Base64, bad percent-encoding, or a decoded URL that is not UTF-8.
    #[error("Invalid url encoding: {0}")]
    InvalidSourceEncoding(String),
    /// Source scheme other than http, https or local.
    #[error("Unsupported source scheme: {0}")]
    UnsupportedSourceScheme(String),
    /// A source that is malformed or unsafe (traversal, NUL, backslash, …).
    #[error("Invalid source URL: {0}")]
    InvalidSource(String),
    /// A source refused by `allowed_sources` (or local sources disabled).
    #[error("Source URL is not allowed: {0}")]
    SourceNotAllowed(String),
    /// An explicit output format imgforge cannot encode.
    #[error("Resulting image format is not supported: {0}")]
    UnsupportedOutputFormat(Format),
    /// No key pair is configured and unsigned URLs are not allowed.
    #[error("Signature required but no key is configured")]
    NoSignatureKey,
    /// The signature segment is not URL-safe Base64.
    #[error("Invalid signature encoding")]
    InvalidSignatureEncoding,
    /// No key pair produced the given signature.
    #[error("Invalid signature")]
    InvalidSignature,
    /// The signature segment looks like a processing option.
    #[error(
        "The signature appears to be a processing option. The signature section should always be present in the URL."
    )]
    MalformedSignature,
}

impl UrlError {
    /// HTTP status imgproxy v4 answers with for this error.
    ///
    /// Signature problems and forbidden security options are 403; an output
    /// format that cannot be encoded is 422; every other URL problem
    /// (unknown/forbidden option, bad argument, expiry, bad source) is 404.
    pub fn status(&self) -> u16 {
        match self {
            UrlError::SecurityOptionsNotAllowed(_)
            | UrlError::NoSignatureKey
            | UrlError::InvalidSignatureEncoding
            | UrlError::InvalidSignature
            | UrlError::MalformedSignature => 403,
            UrlError::UnsupportedOutputFormat(_) => 422,
            _ => 404,
        }
    }

    /// Short message that is safe to show to the client (imgproxy's public text).
    pub fn public_message(&self) -> &'static str {
        match self {
            UrlError::MalformedSignature => {
                "The signature appears to be a processing option. The signature section should always be present in the URL."
            }
            UrlError::NoSignatureKey
            | UrlError::InvalidSignatureEncoding
            | UrlError::InvalidSignature => "Forbidden",
            UrlError::SourceNotAllowed(_) => "Invalid source URL",
            _ => "Invalid URL",
        }
    }

    pub(crate) fn args(option: &'static str, args: &[&str]) -> Self {
        UrlError::InvalidArguments {
            option,
            args: echo(&args.join(":")),
        }
    }

    pub(crate) fn arg(option: &'static str, arg: &str, expected: &'static str) -> Self {
        UrlError::InvalidArgument {
            option,
            arg: echo(arg),
            expected,
        }
    }

    pub(crate) fn rule(option: &'static str, message: String) -> Self {
        UrlError::OptionRule {
            option,
            message: echo(&message),
        }
    }
}

/// Truncates client input before it is stored in an error (on a char boundary).
pub(crate) fn echo(s: &str) -> String {
    if s.len() <= MAX_ECHO {
        return s.to_owned();
    }
    let mut end = MAX_ECHO;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_truncates_on_char_boundary() {
        let long = "é".repeat(100);
        let e = echo(&long);
        assert!(e.len() <= MAX_ECHO + '…'.len_utf8());
        assert!(e.ends_with('…'));
        assert_eq!(echo("short"), "short");
    }

    #[test]
    fn statuses() {
        assert_eq!(UrlError::InvalidSignature.status(), 403);
        assert_eq!(UrlError::SecurityOptionsNotAllowed("msr").status(), 403);
        assert_eq!(UrlError::Expired.status(), 404);
        assert_eq!(UrlError::UnsupportedOutputFormat(Format::Bmp).status(), 422);
        assert_eq!(
            UrlError::SourceNotAllowed("x".into()).public_message(),
            "Invalid source URL"
        );
    }
}
