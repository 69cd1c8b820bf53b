//! From a fetched source to the answer: passthrough (`raw`, `skip_processing`), `/info`, or a
//! libvips transform on the engine's worker pool.

use bytes::Bytes;

use super::headers::content_disposition;
use super::service::{Answer, common_headers};
use crate::config::ImageRoute;
use crate::imgproxy::{Format, ImageRequest};
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
    // The client sees a short message; a failure on our side is logged with libvips's words.
    if matches!(e, TransformError::Internal(_)) {
        tracing::warn!(error = ?e, "transform failed");
    }
    let mut a = Answer::error(e.status(), e.message());
    if matches!(e, TransformError::Overloaded) {
        a.headers.push(("retry-after", "1".into()));
    }
    a
}
