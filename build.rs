//! Compiles imgforge's thin libvips binding (`src/transform/vips/*.c`)
//! against the system libvips found by pkg-config, and links libvips, libjpeg and libwebp.

fn main() {
    println!("cargo:rerun-if-changed=src/transform/vips/glue.c");
    println!("cargo:rerun-if-changed=src/transform/vips/ops.c");
    println!("cargo:rerun-if-changed=src/transform/vips/glue.h");
    println!("cargo:rerun-if-changed=src/transform/vips/jpeg.c");
    println!("cargo:rerun-if-changed=src/transform/vips/webp.c");
    println!("cargo:rerun-if-changed=src/transform/vips/resample.c");
    let vips = match pkg_config::Config::new()
        .atleast_version("8.13")
        .probe("vips")
    {
        Ok(lib) => lib,
        Err(e) => {
            // Without libvips there is no transform engine: fail with the fix.
            panic!(
                "libvips >= 8.13 not found by pkg-config ({e}); install libvips-dev (scripts/setup.sh)"
            );
        }
    };
    let mut build = cc::Build::new();
    build
        .file("src/transform/vips/glue.c")
        .file("src/transform/vips/ops.c")
        .file("src/transform/vips/jpeg.c")
        .file("src/transform/vips/webp.c")
        .file("src/transform/vips/resample.c")
        // resample.c's row loops need the vectoriser (-O2 without it is 2.7x slower, slower than
        // vips_resize): the glue is small, so all of it is built at -O3, debug builds included.
        .opt_level(3)
        .warnings(true)
        .extra_warnings(true);
    // glib's headers trip -Wextra's unused-parameter in callbacks we must match.
    build.flag_if_supported("-Wno-unused-parameter");
    for path in &vips.include_paths {
        build.include(path);
    }
    build.compile("imgforge_vips_glue");
    // jpeg.c calls libjpeg directly (libvips links it too; libvips-dev depends on libjpeg-dev).
    if let Err(e) = pkg_config::probe_library("libjpeg") {
        panic!("libjpeg not found by pkg-config ({e}); install libjpeg-dev (scripts/setup.sh)");
    }
    // webp.c calls libwebp directly (libvips-dev depends on libwebp-dev).
    if let Err(e) = pkg_config::probe_library("libwebp") {
        panic!("libwebp not found by pkg-config ({e}); install libwebp-dev (scripts/setup.sh)");
    }
}
