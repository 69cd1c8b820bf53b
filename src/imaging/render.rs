//! From a fetched source to the answer: passthrough (`raw`, `skip_processing`), `/info`, or a
//! libvips transform on the engine's worker pool.

use bytes::Bytes;

use super::answer::{Answer, common_headers};
use super::headers::content_disposition;
use crate::config::ImageRoute;
use crate::imgproxy::{Format, ImageRequest};
use crate::metrics::ErrorType;
use crate::source::Fetched;
use crate::transform::{Engine, Job, Quality, TransformError, sniff};

/// Produces the answer for a verified request whose source has been fetched.
pub(super) async fn render(
    engine: &Engine,
    image: &ImageRequest,
    route: &ImageRoute,
    fetched: Fetched,
    etag: String,
    info: bool,
) -> Answer {
    let source_format = sniff(&fetched.bytes);
    if info {
        return match engine.info(fetched.bytes.clone()).await {
            Ok(i) => {
                let body = serde_json::json!({
                    "format": i.format.name(),
                    "width": i.width,
                    "height": i.height,
                    "bytes": i.bytes,
                    "pages": i.pages,
                    "animated": i.animated,
                    "alpha": i.alpha,
                    "orientation": i.orientation,
                });
                let mut a = Answer::ok(
                    Bytes::from(body.to_string()),
                    "application/json".into(),
                    etag,
                );
                common_headers(&mut a, image, &fetched);
                a
            }
            Err(e) => transform_error(&e),
        };
    }
    if image.options.raw {
        // Streams the source unchecked, as imgproxy's `raw`: the type is what the bytes are.
        let ct = source_format
            .map(|f| f.mime().to_string())
            .or_else(|| fetched.content_type.clone())
            .unwrap_or_else(|| "application/octet-stream".into());
        let ext = source_format.map_or("bin", Format::extension);
        return passthrough(image, &fetched, ct, ext, etag);
    }
    let Some(src) = source_format else {
        return transform_error(&TransformError::NotAnImage);
    };
    // `skip_processing`: the source goes out untouched when it is already in the wanted format.
    if image.options.skip_processing.contains(&src) && image.output_format(Some(src), false) == src
    {
        return passthrough(
            image,
            &fetched,
            src.mime().to_string(),
            src.extension(),
            etag,
        );
    }
    let decide = {
        let image = image.clone();
        move |p: &crate::transform::Probe, animated: bool| {
            image.output_format(Some(p.format), animated)
        }
    };
    let mut job = Job::new(fetched.bytes.clone(), image.options.clone())
        .decide(decide)
        .quality(Quality::from_route(&route.settings));
    if let Some(wm) = &route.watermark {
        job = job.watermark(wm.clone());
    }
    match engine.transform(job).await {
        Ok(out) => {
            let span = tracing::Span::current();
            span.record("format", out.format.name());
            // As i64: the OTLP layer exports unsigned values as strings.
            span.record("width", i64::from(out.width));
            span.record("height", i64::from(out.height));
            let mut a = Answer::ok(Bytes::from(out.bytes), out.format.mime().to_string(), etag);
            if let Some(d) = content_disposition(
                image.options.filename.as_deref(),
                image.options.return_attachment,
                &image.source.to_url(),
                out.format.extension(),
            ) {
                a.headers.push(("content-disposition", d));
            }
            common_headers(&mut a, image, &fetched);
            a
        }
        Err(e) => transform_error(&e),
    }
}

fn passthrough(
    image: &ImageRequest,
    fetched: &Fetched,
    content_type: String,
    ext: &str,
    etag: String,
) -> Answer {
    let mut a = Answer::ok(fetched.bytes.clone(), content_type, etag);
    if let Some(d) = content_disposition(
        image.options.filename.as_deref(),
        image.options.return_attachment,
        &image.source.to_url(),
        ext,
    ) {
        a.headers.push(("content-disposition", d));
    }
    common_headers(&mut a, image, fetched);
    a
}

fn transform_error(e: &TransformError) -> Answer {
    // The source's fault (4xx) is the client's business; ours (5xx, full queue) is a warning.
    if e.status() >= 500 || matches!(e, TransformError::Overloaded) {
        tracing::warn!(status = e.status(), error = %e, "transform failed");
    } else {
        tracing::info!(status = e.status(), error = %e, "transform failed");
    }
    let mut a = Answer::error(e.status(), e.message()).failed(ErrorType::of_transform(e));
    if matches!(e, TransformError::Overloaded) {
        a.headers.push(("retry-after", "1".into()));
    }
    a
}
