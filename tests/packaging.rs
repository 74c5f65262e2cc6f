//! The package as published: what `cargo package` ships (the crate, its
//! migrations, docs and licenses, nothing of CI, benchmarks or tests),
//! docs.rs building every feature, and scripts/check-msrv, which passes on
//! the lock file as it is and fails naming the package when a locked
//! dependency declares a higher `rust-version` than the crate (a copy of
//! the real metadata with one raised).

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

/// `cargo` with `args` in the crate's directory; its stdout, which must succeed.
fn cargo(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn host() -> String {
    text(&Command::new("rustc").arg("-vV").output().unwrap().stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc names its host")
}

fn metadata() -> serde_json::Value {
    let args = [
        "metadata",
        "--format-version",
        "1",
        "--locked",
        "--filter-platform",
    ];
    let host = host();
    let json = cargo(&[&args[..], &[host.as_str()]].concat());
    serde_json::from_str(&json).unwrap()
}

#[test]
fn the_package_ships_the_crate_its_docs_and_licenses_only() {
    let listed = cargo(&["package", "--list", "--allow-dirty", "--offline"]);
    let files: Vec<&str> = listed.lines().collect();
    for needed in [
        "Cargo.toml",
        "LICENSE-APACHE",
        "LICENSE-MIT",
        "README.md",
        "SECURITY.md",
        "src/lib.rs",
        "src/guide.rs",
        "migrations/sqlite/20261125000001_create_tables.sql",
        "migrations/postgres/20261125000001_create_tables.sql",
        "migrations/mysql/20261204000001_create_tables.sql",
    ] {
        assert!(
            files.contains(&needed),
            "{needed} is not in the package: {files:?}"
        );
    }
    let unwanted = [
        ".ci/",
        "bench/",
        "benches/",
        "BENCHMARKS.md",
        "proptest-regressions/",
    ];
    let unwanted = [
        &unwanted[..],
        &["tests/", "fuzz/", "examples/", "scripts/", "Rocket.toml"],
    ]
    .concat();
    for file in &files {
        assert!(
            !unwanted.iter().any(|u| file.starts_with(u)),
            "{file} is in the package"
        );
    }
}

#[test]
fn docs_rs_builds_every_feature() {
    let metadata = metadata();
    let ours = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == env!("CARGO_PKG_NAME"))
        .unwrap();
    assert_eq!(ours["metadata"]["docs"]["rs"]["all-features"], true);
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
