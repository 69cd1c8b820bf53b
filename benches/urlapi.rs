//! Parse + verify cost of a typical signed imgproxy URL.
//!
//! Run: `cargo bench --bench urlapi -- --warm-up-time 1 --measurement-time 3`

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use imgforge::imgproxy::{
    Presets, RequestHints, RouteSettings, SettingsError, hex_key_pairs, parse_allowed_sources,
    parse_request, sign_path,
};

const NOW: i64 = 1_700_000_000;

fn settings() -> Result<RouteSettings, SettingsError> {
    let key_pairs = hex_key_pairs(
        &["943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881".into()],
        &["520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5".into()],
    )?;
    let presets = Presets::parse(&BTreeMap::from([(
        "thumb".to_owned(),
        "rs:fill:200:200/q:75".to_owned(),
    )]))?;
    Ok(RouteSettings {
        key_pairs,
        presets,
        allowed_sources: parse_allowed_sources(&["https://cdn.example.org/".into()])?,
        auto_webp: true,
        auto_avif: true,
        ..RouteSettings::default()
    })
}

fn bench(c: &mut Criterion) {
    let settings = match settings() {
        Ok(s) => s,
        Err(e) => panic!("bench settings: {e}"),
    };
    let hints = RequestHints {
        accept: Some("image/avif,image/webp,image/apng,image/*,*/*;q=0.8"),
        ..RequestHints::default()
    };
    let plain =
        "/rs:fill:300:400:0/g:sm/q:80/plain/https://cdn.example.org/images/2024/photo.jpg@webp";
    let base64 =
        "/rs:fit:640:0/pr:thumb/aHR0cHM6Ly9jZG4uZXhhbXBsZS5vcmcvaW1hZ2VzLzIwMjQvcGhvdG8uanBn";
    let signed_plain = format!("/{}{plain}", sign_path(&settings.key_pairs[0], plain, 32));
    let signed_b64 = format!("/{}{base64}", sign_path(&settings.key_pairs[0], base64, 32));
    assert!(parse_request(&signed_plain, &hints, &settings, NOW).is_ok());
    assert!(parse_request(&signed_b64, &hints, &settings, NOW).is_ok());

    c.bench_function("parse_request signed plain", |b| {
        b.iter(|| parse_request(black_box(&signed_plain), black_box(&hints), &settings, NOW))
    });
    c.bench_function("parse_request signed base64 + preset", |b| {
        b.iter(|| parse_request(black_box(&signed_b64), black_box(&hints), &settings, NOW))
    });
    c.bench_function("sign_path", |b| {
        b.iter(|| sign_path(&settings.key_pairs[0], black_box(plain), 32))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
