//! `deploy/lib.sh`'s own behaviour where the machine is in a state a test cannot make with the
//! real service without breaking every other test: here the service's control commands
//! (`pg_isready`, `pg_ctlcluster`) are stand-ins, and the script is the real one.

use std::path::Path;
use std::process::Command;

const LIB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/lib.sh");

/// Runs `start_postgres` from `deploy/lib.sh` with stand-ins for Postgres's control commands:
/// `pg_isready` answers only from its `ready_after`-th call on, and `pg_ctlcluster status`
/// reports the cluster `running` or not; `start` refuses with Debian's "already running"
/// (exit 2), as it does for a cluster that is up. Returns the exit status, stderr, and the
/// calls the stand-ins saw.
fn start_postgres(ready_after: u32, running: bool) -> (i32, String, String) {
    let dir = std::env::temp_dir().join(format!("lt-deploy-{}", uuid::Uuid::new_v4().simple()));
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let calls = dir.join("calls");
    stand_in(
        &bin.join("pg_isready"),
        &format!(
            "echo pg_isready >>'{calls}'\n\
             n=$(grep -c pg_isready '{calls}')\n\
             [ \"$n\" -ge {ready_after} ]",
            calls = calls.display()
        ),
    );
    stand_in(
        &bin.join("pg_ctlcluster"),
        &format!(
            "echo \"pg_ctlcluster $*\" >>'{calls}'\n\
             case \" $* \" in\n\
               *' status '*) exit {status} ;;\n\
               *' start '*) echo 'Cluster is already running.' >&2; exit 2 ;;\n\
             esac",
            calls = calls.display(),
            status = if running { 0 } else { 3 }
        ),
    );
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source '{LIB}' && PATH='{bin}':$PATH && POSTGRES_START_SECONDS=10 start_postgres",
            bin = bin.display()
        ))
        .env("LINKTRACE_STATE_DIR", dir.join("state"))
        .output()
        .expect("bash runs");
    let seen = std::fs::read_to_string(&calls).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        seen,
    )
}

fn stand_in(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/usr/bin/env bash\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// CI stop 40: Postgres was up but not yet answering, `pg_ctlcluster start` said "Cluster is
/// already running." (exit 2), and `deploy/test.sh` ended after 2 s.
#[test]
fn start_postgres_waits_for_a_running_cluster_that_does_not_answer_yet() {
    let (code, stderr, calls) = start_postgres(3, true);
    assert_eq!(code, 0, "start_postgres failed: {stderr}");
    assert!(
        !calls.contains(" start"),
        "a running cluster is not started again: {calls}"
    );
    assert_eq!(calls.matches("pg_isready").count(), 3, "{calls}");
}

/// The race between `status` and `start`: another starter brought it up in between.
#[test]
fn start_postgres_waits_when_another_starter_wins_the_race() {
    let (code, stderr, calls) = start_postgres(2, false);
    assert_eq!(code, 0, "start_postgres failed: {stderr}");
    assert!(calls.contains(" start"), "{calls}");
}

/// A cluster that never answers: a clear failure, not a hang.
#[test]
fn start_postgres_gives_up_on_a_cluster_that_never_answers() {
    let (code, stderr, _) = start_postgres(u32::MAX, true);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("timed out waiting for Postgres"),
        "{stderr}"
    );
}
