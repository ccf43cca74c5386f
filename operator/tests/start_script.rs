//! Runs the pod start script (as rendered into the StatefulSet) under `/bin/sh` with a fake
//! `qdrant` binary that records its arguments, for each ordinal and volume state.

use std::path::{Path, PathBuf};
use std::process::Command;

use operator::build::statefulset::start_script;
use operator::build::Names;

struct Pod {
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl Pod {
    /// A fake `/qdrant` tree: `qdrant` binary, `storage/`, `operator/` (the ConfigMap mount).
    fn new() -> Pod {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("qdrant");
        std::fs::create_dir_all(root.join("storage")).expect("storage");
        std::fs::create_dir_all(root.join("operator")).expect("operator");
        let bin = root.join("qdrant");
        std::fs::write(
            &bin,
            format!("#!/bin/sh\necho \"$@\" > {}\n", root.join("args").display()),
        )
        .expect("fake binary");
        let mut perms = std::fs::metadata(&bin).expect("meta").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&bin, perms).expect("chmod");
        Pod { root, _dir: dir }
    }

    fn write(&self, relative: &str, contents: &str) {
        let path = self.root.join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, contents).expect("write");
    }

    /// Runs the script as pod `pod_name`; returns (exit code, recorded args, stderr).
    fn start(&self, pod_name: &str) -> (i32, Option<String>, String) {
        let names = Names {
            cluster: "demo".to_string(),
            namespace: "db".to_string(),
        };
        let root = self.root.display().to_string();
        let script = start_script(&names, false)
            .replace("/qdrant/qdrant", "@BIN@")
            .replace("/qdrant", &root)
            .replace("@BIN@", &format!("{root}/qdrant"))
            .replace("sleep 10", "sleep 0");
        let output = Command::new("/bin/sh")
            .arg("-c")
            .arg(&script)
            .env("POD_NAME", pod_name)
            .env("PATH", "/usr/bin:/bin")
            .output()
            .expect("run sh");
        let args = std::fs::read_to_string(self.root.join("args"))
            .ok()
            .map(|s| s.trim().to_string());
        (
            output.status.code().unwrap_or(-1),
            args,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    fn config_arg(&self) -> String {
        format!(
            "--config-path {}",
            Path::new(&self.root).join("operator/config.yaml").display()
        )
    }
}

#[test]
fn pod_zero_forms_the_cluster_on_first_start() {
    let pod = Pod::new();
    let (code, args, _) = pod.start("demo-0");
    assert_eq!(code, 0);
    assert_eq!(
        args.as_deref(),
        Some(format!("{} --uri http://demo-0.demo-headless.db:6335", pod.config_arg()).as_str())
    );
}

#[test]
fn other_pods_bootstrap_from_pod_zero() {
    let pod = Pod::new();
    let (code, args, _) = pod.start("demo-12");
    assert_eq!(code, 0);
    assert_eq!(
        args.as_deref(),
        Some(
            format!(
                "{} --bootstrap http://demo-0.demo-headless.db:6335 --uri http://demo-12.demo-headless.db:6335",
                pod.config_arg()
            )
            .as_str()
        )
    );
}

#[test]
fn pod_zero_with_state_restarts_as_before() {
    let pod = Pod::new();
    pod.write("storage/raft_state.json", "{}");
    pod.write("operator/bootstrap-peers", "http://localhost:6335\n");
    let (code, args, _) = pod.start("demo-0");
    assert_eq!(code, 0);
    assert!(
        args.as_deref()
            .is_some_and(|a| a.ends_with("--uri http://demo-0.demo-headless.db:6335") && !a.contains("--bootstrap")),
        "{args:?}"
    );
}

#[test]
fn pod_zero_with_a_lost_volume_joins_a_live_peer() {
    let pod = Pod::new();
    // Only lost+found: the volume is new.
    std::fs::create_dir_all(pod.root.join("storage/lost+found")).expect("lost+found");
    // The first peer does not resolve, the second (localhost) does.
    pod.write(
        "operator/bootstrap-peers",
        "http://demo-1.demo-headless.invalid:6335\nhttp://localhost:6335\n",
    );
    let (code, args, _) = pod.start("demo-0");
    assert_eq!(code, 0);
    assert_eq!(
        args.as_deref(),
        Some(
            format!(
                "{} --bootstrap http://localhost:6335 --uri http://demo-0.demo-headless.db:6335",
                pod.config_arg()
            )
            .as_str()
        )
    );
}

#[test]
fn pod_zero_refuses_to_form_a_second_cluster() {
    let pod = Pod::new();
    pod.write(
        "operator/bootstrap-peers",
        "http://demo-1.demo-headless.invalid:6335\nhttp://demo-2.demo-headless.invalid:6335\n",
    );
    let (code, args, stderr) = pod.start("demo-0");
    assert_eq!(code, 1);
    assert_eq!(args, None, "qdrant must not start");
    assert!(stderr.contains("refusing to form a second cluster"), "{stderr}");
}
