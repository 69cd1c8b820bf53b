//! Compiles imgforge's thin libvips binding (`src/*.c`)
//! against the system libvips found by pkg-config, and links libvips, libjpeg and libwebp.

fn main() {
    println!("cargo:rerun-if-changed=src/glue.c");
    println!("cargo:rerun-if-changed=src/ops.c");
    println!("cargo:rerun-if-changed=src/glue.h");
    println!("cargo:rerun-if-changed=src/jpeg.c");
    println!("cargo:rerun-if-changed=src/webp.c");
    println!("cargo:rerun-if-changed=src/resample.c");
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
        .file("src/glue.c")
        .file("src/ops.c")
        .file("src/jpeg.c")
        .file("src/webp.c")
        .file("src/resample.c")
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
