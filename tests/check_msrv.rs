//! scripts/check-msrv: passes on the lock file as it is, and fails naming
//! the package when a locked dependency declares a higher `rust-version`
//! than the crate (a copy of the real metadata with one raised).

use std::path::Path;
use std::process::{Command, Output};

fn check_msrv(args: &[&Path]) -> Output {
    Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-msrv"))
        .args(args)
        .output()
        .expect("scripts/check-msrv runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_locked_dependencies_need_no_newer_rust_than_declared() {
    let out = check_msrv(&[]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let declared = env!("CARGO_PKG_RUST_VERSION");
    assert_eq!(
        text(&out.stdout).trim(),
        format!("scripts/check-msrv: rust-version {declared} covers every locked dependency")
    );
}

#[test]
fn a_dependency_declaring_a_newer_rust_fails_the_check() {
    let host = text(&Command::new("rustc").arg("-vV").output().unwrap().stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc names its host");
    let metadata = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--filter-platform",
            &host,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(metadata.status.success(), "{}", text(&metadata.stderr));
    let mut metadata: serde_json::Value = serde_json::from_slice(&metadata.stdout).unwrap();
    let rocket = metadata["packages"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|p| p["name"] == "rocket")
        .expect("rocket is locked");
    rocket["rust_version"] = "9.0".into();
    let version = rocket["version"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metadata.json");
    std::fs::write(&file, metadata.to_string()).unwrap();

    let out = check_msrv(&[&file]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines[..2],
        [
            format!(
                "scripts/check-msrv: rust-version = \"{}\", but locked dependencies need more:",
                env!("CARGO_PKG_RUST_VERSION")
            ),
            format!("  rocket {version}: rust-version 9.0"),
        ],
        "{stderr}"
    );
}
