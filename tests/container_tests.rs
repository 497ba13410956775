//! Issue 23: rehearsal and the test harness on PostgreSQL in a container, started through
//! testcontainers. Docker is required: `.ci/run` starts dockerd and builds the image
//! (`.ci/docker-image.sh`), and these tests fail, not skip, when there is none.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use seqmig::db::ConnectOptions;
use seqmig::rehearse::{self, Rehearsal};
use seqmig::scratch::ContainerServer;

use crate::harness::{block_on, test_image};

/// How many containers named `name` exist, running or not.
fn containers_named(name: &str) -> usize {
    let out = Command::new("docker")
        .args(["ps", "-a", "-q", "--filter", &format!("name=^/{name}$")])
        .output()
        .expect("run docker ps");
    assert!(out.status.success(), "docker ps: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// The ```text blocks of book/src/containers.md, each as its lines.
fn book_blocks() -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src/containers.md"))
        .unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in text.lines() {
        match (&mut current, line.trim_start().strip_prefix("```")) {
            (None, Some("text")) => current = Some(Vec::new()),
            (Some(_), Some(_)) => blocks.push(current.take().unwrap()),
            (Some(b), None) => b.push(line.to_string()),
            _ => {}
        }
    }
    blocks
}

/// `output` has `quoted` as consecutive lines, where `…` in a quoted line stands for any text.
fn quotes(output: &str, quoted: &[String]) -> bool {
    // Runs of spaces compare as one: a table's columns widen with a step that took 100 ms.
    let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let matches = |line: &str, pattern: &str| {
        let (line, pattern) = (squash(line), squash(pattern));
        let (line, pattern) = (line.as_str(), pattern.as_str());
        let parts: Vec<&str> = pattern.split('…').collect();
        if parts.len() == 1 {
            return line.trim_end() == pattern.trim_end();
        }
        let (first, last) = (parts[0], parts[parts.len() - 1]);
        if !line.starts_with(first) || !line.ends_with(last) {
            return false;
        }
        let mut rest = &line[first.len()..];
        for part in &parts[1..parts.len() - 1] {
            match rest.find(part) {
                Some(i) => rest = &rest[i + part.len()..],
                None => return false,
            }
        }
        rest.len() >= last.len()
    };
    let lines: Vec<&str> = output.lines().collect();
    lines.windows(quoted.len()).any(|w| w.iter().zip(quoted).all(|(l, q)| matches(l, q)))
}

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-examples");
    let mut examples: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("before.sql").is_file())
        .collect();
    examples.sort();
    examples
}

/// Plans the example and, unless the plan is blocked, rehearses it on `admin`.
fn rehearse_example(dir: &Path, admin: &ConnectOptions) -> Option<rehearse::Report> {
    let toml = dir.join("seqmig.toml");
    let hints = if toml.is_file() {
        seqmig::diff::Hints::from_file(&toml).unwrap()
    } else {
        seqmig::diff::Hints::default()
    };
    let before = std::fs::read_to_string(dir.join("before.sql")).unwrap();
    let after = std::fs::read_to_string(dir.join("after.sql")).unwrap();
    let current = seqmig::parse::load_str("before.sql", &before).unwrap().schema;
    let desired = seqmig::parse::load_str("after.sql", &after).unwrap().schema;
    let plan =
        seqmig::plan::plan(&current, &desired, &hints, &seqmig::render::Renderer::embedded()).unwrap().plan;
    if plan.is_blocked() {
        return None;
    }
    let input = Rehearsal { plan, current, current_sql: before, desired_sql: after, rows: 5 };
    Some(block_on(rehearse::rehearse(admin, &input, std::future::pending())).unwrap())
}

/// Every migrations-example rehearses in one container, as on the local cluster: each
/// unblocked plan passes with the final schema equal to the desired one and no lock above
/// its prediction. The container is gone afterwards.
#[test]
#[allow(clippy::print_stderr)]
fn issue23_2_every_example_rehearses_in_a_container() {
    let started = Instant::now();
    let server =
        ContainerServer::start(&test_image(), &[]).expect("PostgreSQL in a container (Docker is required)");
    let name = server.name().to_string();
    assert_eq!(containers_named(&name), 1);
    let ready = started.elapsed();
    let admin = ConnectOptions::from_url(&server.url("postgres")).unwrap();
    let version: String = block_on(async {
        let (client, conn) =
            tokio_postgres::connect(&server.url("postgres"), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client.query_one("SHOW server_version", &[]).await.unwrap().get(0)
    });
    let examples = examples();
    assert!(examples.len() >= 18);
    // A few at a time, as the local-cluster test does: each rehearsal mostly waits on the server.
    let results: Vec<(String, Option<rehearse::Report>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = examples
            .chunks(5)
            .map(|chunk| {
                let admin = &admin;
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|d| {
                            (
                                d.file_name().unwrap().to_string_lossy().into_owned(),
                                rehearse_example(d, admin),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut failed = Vec::new();
    for (name, report) in &results {
        let Some(report) = report else { continue };
        let ok = report.passed()
            && report.final_schema_matches == Some(true)
            && report.phases.iter().all(|p| p.steps.iter().all(|s| !s.lock_exceeds));
        if !ok {
            failed.push(format!("{name}:\n{}", rehearse::render::text(report)));
        }
    }
    let rehearsed = results.iter().filter(|(_, r)| r.is_some()).count();
    // The blocked examples are those of rehearse_tests (blocking findings, never applied).
    assert!(rehearsed >= examples.len() - 5, "only {rehearsed} of {} rehearsed", examples.len());
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    server.stop();
    assert_eq!(containers_named(&name), 0, "container {name} left behind");
    eprintln!(
        "issue23_2: PostgreSQL {version} ready in {:.1} s; {rehearsed} of {} examples rehearsed; {:.1} s in all",
        ready.as_secs_f64(),
        examples.len(),
        started.elapsed().as_secs_f64()
    );
}

/// `seqmig rehearse --image` runs the same rehearsal in a container it names on stderr, and
/// removes the container before it exits. Its output is the one book/src/containers.md quotes.
#[test]
fn issue23_2_rehearse_cli_uses_the_image_and_removes_the_container() {
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-examples/04-add-column");
    let image = test_image();
    let out = Command::new(env!("CARGO_BIN_EXE_seqmig"))
        .args(["rehearse", "--image", &image, "--from"])
        .arg(ex.join("before.sql"))
        .arg("--to")
        .arg(ex.join("after.sql"))
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("final schema equals the desired one"), "{stdout}");
    assert!(stdout.contains(" passed in "), "{stdout}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&format!("PostgreSQL from {image} runs in container ")))
        .expect(&stderr);
    let name = line.split_whitespace().nth(6).unwrap();
    assert!(name.starts_with("seqmig-pg-"), "{line}");
    assert_eq!(containers_named(name), 0, "container {name} left behind");
    let blocks = book_blocks();
    assert!(
        quotes(&format!("{stderr}{stdout}"), &blocks[0]),
        "book/src/containers.md quotes:\n{}\nseqmig printed:\n{stderr}{stdout}",
        blocks[0].join("\n")
    );
}

/// Killed with SIGKILL mid-rehearsal, seqmig cannot remove its container; the reaper it
/// started does, once seqmig is gone.
#[test]
fn issue23_2_a_killed_rehearsal_leaves_no_container() {
    use std::io::BufRead as _;
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-examples/08-change-type");
    let image = test_image();
    let mut child = Command::new(env!("CARGO_BIN_EXE_seqmig"))
        .args(["rehearse", "--image", &image, "--rows", "20000", "--from"])
        .arg(ex.join("before.sql"))
        .arg("--to")
        .arg(ex.join("after.sql"))
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stderr.take().unwrap()).read_line(&mut line).unwrap();
    let name = line.split_whitespace().nth(6).expect(&line).to_string();
    assert!(name.starts_with("seqmig-pg-"), "{line}");
    assert_eq!(containers_named(&name), 1, "{line}");
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    while containers_named(&name) > 0 {
        assert!(Instant::now() < deadline, "container {name} left behind after SIGKILL");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Without a Docker engine the error says so (and how to get one) instead of a panic.
#[test]
fn issue23_2_no_engine_is_an_error_that_says_what_to_do() {
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-examples/04-add-column");
    let out = Command::new(env!("CARGO_BIN_EXE_seqmig"))
        .args(["rehearse", "--image", "postgres:17", "--from"])
        .arg(ex.join("before.sql"))
        .arg("--to")
        .arg(ex.join("after.sql"))
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("failed to start PostgreSQL from image 'postgres:17'"), "{stderr}");
    assert!(stderr.contains("no Docker engine answers"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let blocks = book_blocks();
    assert!(
        quotes(&stderr, &blocks[1]),
        "book/src/containers.md quotes:\n{}\nseqmig printed:\n{stderr}",
        blocks[1].join("\n")
    );
}

/// Set in the child processes of the test below.
const CHILD_ENV: &str = "SEQMIG_CONTAINER_HARNESS_CHILD";

/// The harness in container mode (`SEQMIG_TEST_PG=container`): tests that create databases,
/// observe locks during a rehearsal, and require a password (pg_hba.conf edited inside the
/// container) pass on it; the container is removed when the test binary exits.
#[test]
#[allow(clippy::print_stderr)]
fn issue23_4_the_harness_runs_on_a_container_when_asked() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let started = Instant::now();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "harness_tests::parallel_tests_get_different_databases_a",
            "harness_tests::parallel_tests_get_different_databases_b",
            "rehearse_tests::a_correct_plan_passes_with_its_locks_observed",
            "introspect_tests::bad_input_wrong_password_is_refused_without_echoing_it",
            "--nocapture",
        ])
        .env("SEQMIG_TEST_PG", "container")
        .env(CHILD_ENV, "1")
        .env_remove("SEQMIG_TEST_DATABASE_URL")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("test result: ok. 4 passed"), "{text}");
    let line = text.lines().find(|l| l.starts_with("harness: PostgreSQL from ")).expect(&text);
    assert!(line.contains(&format!("from {} in container", test_image())), "{line}");
    let name = line.split_whitespace().nth(6).unwrap();
    assert!(name.starts_with("seqmig-pg-"), "{line}");
    // The reaper removes it once the child's pipe closes, right after the child exits.
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    while containers_named(name) > 0 {
        assert!(Instant::now() < deadline, "container {name} left behind");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    eprintln!("issue23_4: child test run in a container took {:.1} s", started.elapsed().as_secs_f64());
}
