//! Builds the `syncfs` shim (`shim/syncfs.rs`) into `OUT_DIR/libpowerfs_syncfs.so` with the
//! same `rustc` (a cdylib with no crates: cargo cannot depend on a cdylib's file directly), and
//! hands its path to the crate as `POWERFS_SYNCFS_SHIM` (`powerfs::SYNCFS_SHIM`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "shim/syncfs.rs";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("libpowerfs_syncfs.so");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let status = Command::new(rustc)
        .args(["--edition=2021", "--crate-type=cdylib", "-O", "-o"])
        .arg(&out)
        .arg(src)
        .status()
        .expect("cannot run rustc to build the syncfs shim");
    assert!(status.success(), "building {src} failed");
    println!("cargo:rustc-env=POWERFS_SYNCFS_SHIM={}", out.display());
}
