//! include/polysio.h must be exactly what the pinned cbindgen generates from this crate.
//! Regenerate it with `POLYSIO_BLESS=1 cargo test -p polysio-ffi --test header`.

use std::path::Path;

#[test]
fn checked_in_header_matches_a_fresh_generation() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let path = dir.join("../include/polysio.h");
    if std::env::var_os("POLYSIO_BLESS").is_some() {
        std::fs::write(&path, &fresh).expect("write include/polysio.h");
        return;
    }
    let current = std::fs::read(&path).unwrap_or_default();
    if current != fresh {
        let cur = String::from_utf8_lossy(&current);
        let new = String::from_utf8_lossy(&fresh);
        let first = cur
            .lines()
            .zip(new.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| cur.lines().count().min(new.lines().count()));
        panic!(
            "include/polysio.h is out of date (first difference at line {}):\n  checked in: {:?}\n  generated:  {:?}\n\
             regenerate it with: POLYSIO_BLESS=1 cargo test -p polysio-ffi --test header",
            first + 1,
            cur.lines().nth(first).unwrap_or("<end>"),
            new.lines().nth(first).unwrap_or("<end>"),
        );
    }
}
