//! The units in `systemd/` and the Debian package, checked with the tools
//! that will judge them in production: `systemd-analyze` and `cargo deb`.
//! Both must be installed (`.ci/deps` installs them); a missing tool fails
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

#[test]
fn debian_package_holds_the_binaries_the_units_and_the_conffile() {
    // A dev-profile build in a target directory of its own: the test run
    // holds the lock on the main one.
    let target = Path::new(env!("CARGO_BIN_EXE_walkvd"))
        .ancestors()
        .nth(2)
        .unwrap()
        .join("package-test");
    let deb = target.join("walkv-test.deb");
    let out = run(Command::new(env!("CARGO"))
        .args(["deb", "--fast", "--profile", "dev", "--output"])
        .arg(&deb)
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(repo()));
    assert!(
        out.status.success(),
        "cargo deb failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = run(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    let listing = String::from_utf8_lossy(&listing.stdout);
    let files: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    for wanted in [
        "./usr/bin/walkvd",
        "./usr/bin/walkvctl",
        "./usr/bin/walkv-crashtest",
        "./usr/lib/systemd/system/walkv.service",
        "./usr/lib/systemd/system/walkv.socket",
        "./usr/lib/sysusers.d/walkv.conf",
        "./etc/walkv/walkv.toml",
        "./usr/share/doc/walkv/operations.md",
    ] {
        assert!(
            files.contains(&wanted),
            "{wanted} missing from the package:\n{listing}"
        );
    }
    let control = tempfile::tempdir().unwrap();
    let extracted = run(Command::new("dpkg-deb")
        .arg("--control")
        .arg(&deb)
        .arg(control.path()));
    assert!(extracted.status.success());
    let conffiles = std::fs::read_to_string(control.path().join("conffiles")).unwrap();
    assert_eq!(conffiles.trim(), "/etc/walkv/walkv.toml");
    let postinst = std::fs::read_to_string(control.path().join("postinst")).unwrap();
    assert!(
        postinst.contains("systemd-sysusers"),
        "creates the user:\n{postinst}"
    );
    assert!(
        postinst.contains("deb-systemd-invoke start walkv.service")
            && !postinst
                .lines()
                .any(|l| l.contains("deb-systemd-invoke start") && l.contains("walkv.socket")),
        "starts the service on install, not the socket:\n{postinst}"
    );
    let shipped_config = std::fs::read(repo().join("conf/walkv.toml")).unwrap();
    let packaged = run(Command::new("dpkg-deb").arg("--fsys-tarfile").arg(&deb)).stdout;
    assert!(
        packaged
            .windows(shipped_config.len())
            .any(|w| w == shipped_config.as_slice()),
        "/etc/walkv/walkv.toml is conf/walkv.toml"
    );
}
