//! The units in `systemd/` and the Debian package, checked with the tools
//! that will judge them in production: `systemd-analyze`.
//! It must be installed (`.ci/deps` installs it); a missing tool fails
//! the test rather than skipping it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} ({e}); install the test tools with .ci/deps"))
}

/// The units copied into a temporary directory, with `ExecStart` pointing at
/// the walkvd this test run built: `verify` checks that the binary exists.
fn units_with_built_binary() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let service = std::fs::read_to_string(repo().join("systemd/walkv.service")).unwrap();
    assert!(service.contains("ExecStart=/usr/bin/walkvd --config /etc/walkv/walkv.toml"));
    let service = service.replace("/usr/bin/walkvd", env!("CARGO_BIN_EXE_walkvd"));
    let service_path = dir.path().join("walkv.service");
    let socket_path = dir.path().join("walkv.socket");
    std::fs::write(&service_path, service).unwrap();
    std::fs::copy(repo().join("systemd/walkv.socket"), &socket_path).unwrap();
    (dir, service_path, socket_path)
}

#[test]
fn units_pass_systemd_analyze_verify_without_a_single_warning() {
    let (dir, service, socket) = units_with_built_binary();
    let out = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(&service)
        .arg(&socket)
        .current_dir(dir.path()));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert_eq!(said.trim(), "", "systemd-analyze verify warned");
}

#[test]
fn service_exposure_is_at_most_2_and_the_operations_guide_quotes_it() {
    let (_dir, service, _) = units_with_built_binary();
    let out = run(Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&service));
    let text = String::from_utf8_lossy(&out.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for walkv.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    assert!(score <= 2.0, "exposure {score} > 2.0:\n{text}");
    let guide = std::fs::read_to_string(repo().join("docs/operations.md")).unwrap();
    assert!(
        guide.contains(&format!("overall exposure level {score:.1}")),
        "docs/operations.md should quote the measured exposure level {score:.1}"
    );
}
