//! Snapshot tests (insta) of every report format: the human summary and the JSON
//! document, for a passing directory, a violation, a sink problem and an error.

use assert_cmd::Command;

fn run(args: &[&str]) -> String {
    let out = Command::cargo_bin("soakcheck")
        .unwrap()
        .env_remove("MULTIPLE_KEYS_LIST")
        .arg("verify")
        .args(args)
        .output()
        .unwrap();
    let mut text = String::from_utf8(out.stdout).unwrap();
    text.push_str(&format!("--- exit {}\n", out.status.code().unwrap()));
    text
}

const HAPPY: &[&str] = &[
    "--sink-dir",
    "testdata/happy",
    "--input-dir",
    "testdata/in",
    "--expect-complete",
];
const LOSS: &[&str] = &[
    "--sink-dir",
    "testdata/loss",
    "--input-dir",
    "testdata/in",
    "--expect-complete",
];
const REGRESSED: &[&str] = &[
    "--sink-dir",
    "testdata/problem-commit-regressed",
    "--input-dir",
    "testdata/in",
    "--keys",
    "A",
];
const MALFORMED: &[&str] = &[
    "--sink-dir",
    "testdata/bad-malformed-txnlog",
    "--input-dir",
    "testdata/in",
    "--keys",
    "A",
];

#[test]
fn human_reports() {
    insta::assert_snapshot!("human_happy", run(HAPPY));
    insta::assert_snapshot!("human_loss", run(LOSS));
    insta::assert_snapshot!("human_commit_regressed", run(REGRESSED));
    insta::assert_snapshot!("human_error", run(MALFORMED));
}

#[test]
fn json_reports() {
    let json = |args: &[&str]| run(&[args, &["--json"]].concat());
    insta::assert_snapshot!("json_happy", json(HAPPY));
    insta::assert_snapshot!("json_loss", json(LOSS));
    insta::assert_snapshot!("json_commit_regressed", json(REGRESSED));
    insta::assert_snapshot!("json_error", json(MALFORMED));
}
